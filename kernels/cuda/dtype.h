#pragma once
// Element types of the raw CUDA kernels. Plain C++: host code includes it without CUDA headers.

namespace dit::kernels::cuda {

enum class CudaDtype { kFloat32, kBFloat16, kFloat16 };

inline const char* dtype_name(CudaDtype dtype) {
  switch (dtype) {
    case CudaDtype::kFloat32: return "fp32";
    case CudaDtype::kBFloat16: return "bf16";
    case CudaDtype::kFloat16: return "fp16";
  }
  return "?";
}

inline int dtype_bytes(CudaDtype dtype) { return dtype == CudaDtype::kFloat32 ? 4 : 2; }

}  // namespace dit::kernels::cuda
