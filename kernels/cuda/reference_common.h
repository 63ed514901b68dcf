#pragma once
// What the host references of the CUDA kernels share (attention_reference.h, adaln_reference.h):
// 16-bit element conversions, host images of device tensors, a thread pool loop and the
// comparison against a tolerance. Needs the CUDA headers (bf16/fp16 host conversions), no GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "dtype.h"

namespace dit::kernels::cuda::reference {

// ---- 16-bit element conversions, round to nearest even like the GPU's ---------------------------

inline uint16_t to_bits16(float x, CudaDtype dtype) {
  if (dtype == CudaDtype::kBFloat16) return __nv_bfloat16_raw(__float2bfloat16_rn(x)).x;
  return __half_raw(__float2half_rn(x)).x;
}

inline float from_bits16(uint16_t bits, CudaDtype dtype) {
  if (dtype == CudaDtype::kBFloat16) {
    __nv_bfloat16_raw raw;
    raw.x = bits;
    return __bfloat162float(__nv_bfloat16(raw));
  }
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

inline float round_to(float x, CudaDtype dtype) {
  return dtype == CudaDtype::kFloat32 ? x : from_bits16(to_bits16(x, dtype), dtype);
}

// Runs f(begin, end) over [0, n) on all host cores.
inline void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t threads =
      std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), std::max<int64_t>(n, 1));
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t)
    pool.emplace_back(f, n * t / threads, n * (t + 1) / threads);
  for (auto& th : pool) th.join();
}

// max |got - ref| against tol * max(1, max |ref|); a NaN or inf in `got` fails.
struct Comparison {
  double max_err = 0, max_ref = 0;
  int64_t worst = -1;  // index of max_err, or of the first non-finite value
  bool finite = true;

  void add(int64_t i, double got, double ref) {
    max_ref = std::max(max_ref, std::fabs(ref));
    if (!std::isfinite(got)) {
      if (finite) worst = i;
      finite = false;
      return;
    }
    const double err = std::fabs(got - ref);
    if (finite && (worst < 0 || err > max_err)) worst = i;
    max_err = std::max(max_err, err);
  }
  double ratio(double tol) const {
    return finite ? max_err / (tol * std::max(1.0, max_ref)) : INFINITY;
  }
};

// Host images of device tensors in any of the three dtypes: values as float, bytes as stored.
inline std::vector<unsigned char> to_device_bytes(const std::vector<float>& values,
                                                  CudaDtype dtype) {
  std::vector<unsigned char> bytes(values.size() * dtype_bytes(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == CudaDtype::kFloat32) {
      memcpy(&bytes[4 * i], &values[i], 4);
    } else {
      const uint16_t bits = to_bits16(values[i], dtype);
      memcpy(&bytes[2 * i], &bits, 2);
    }
  }
  return bytes;
}

inline std::vector<float> from_device_bytes(const std::vector<unsigned char>& bytes,
                                            CudaDtype dtype) {
  std::vector<float> values(bytes.size() / dtype_bytes(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == CudaDtype::kFloat32) {
      memcpy(&values[i], &bytes[4 * i], 4);
    } else {
      uint16_t bits;
      memcpy(&bits, &bytes[2 * i], 2);
      values[i] = from_bits16(bits, dtype);
    }
  }
  return values;
}

}  // namespace dit::kernels::cuda::reference
