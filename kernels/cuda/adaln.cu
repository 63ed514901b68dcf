// adaLN pieces on CUDA (adaln_params.h): checks, and launches of adaln_kernel.cuh with
// 16-byte or element accesses.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "adaln_kernel.cuh"
#include "adaln_params.h"

namespace dit::kernels::cuda {

namespace {

using adaln_detail::kThreads;
using adaln_detail::kWarpsPerBlock;

// Rows are at most 2^31 - 1 blocks of kWarpsPerBlock.
constexpr int64_t kMaxRows = int64_t{std::numeric_limits<int>::max()} * kWarpsPerBlock;
constexpr int64_t kMaxExtent = int64_t{1} << 31;  // batch, tokens and dim each

const char* check_extents(int64_t batch, int64_t tokens, int64_t dim) {
  if (batch < 0 || tokens < 0 || dim < 0 || batch > kMaxExtent || tokens > kMaxExtent ||
      dim > kMaxExtent)
    return "batch, tokens and dim must be in [0, 2^31]";
  if (batch * tokens > kMaxRows) return "batch * tokens must be at most 2^31 * 8 rows";
  if (batch * tokens > 0 && dim == 0) return "dim must be positive";
  return nullptr;
}

template <typename T>
cudaError_t launch_adaln_modulate(const AdaLNCudaParams& p, cudaStream_t stream) {
  const unsigned blocks = adaln_detail::blocks_for(p.batch * p.tokens);
  if (adaln_detail::vectorised<T>(p))
    adaln_detail::adaln_modulate_kernel<T, 16 / sizeof(T)><<<blocks, kThreads, 0, stream>>>(p);
  else
    adaln_detail::adaln_modulate_kernel<T, 1><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_gate_residual(const GateResidualCudaParams& p, cudaStream_t stream) {
  const unsigned blocks = adaln_detail::blocks_for(p.batch * p.tokens);
  if (adaln_detail::vectorised<T>(p))
    adaln_detail::gate_residual_kernel<T, 16 / sizeof(T)><<<blocks, kThreads, 0, stream>>>(p);
  else
    adaln_detail::gate_residual_kernel<T, 1><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

const char* adaln_modulate_cuda_unsupported(const AdaLNCudaParams& p) {
  if (const char* why = check_extents(p.batch, p.tokens, p.dim)) return why;
  if (!(p.eps >= 0.f) || !std::isfinite(p.eps))
    return "adaln_modulate_cuda: eps must be finite and non-negative";
  if (p.batch * p.tokens == 0) return nullptr;
  if (p.x == nullptr || p.shift == nullptr || p.scale == nullptr || p.out == nullptr)
    return "adaln_modulate_cuda: x, shift, scale and out must not be null";
  return nullptr;
}

const char* gate_residual_cuda_unsupported(const GateResidualCudaParams& p) {
  if (const char* why = check_extents(p.batch, p.tokens, p.dim)) return why;
  if (p.batch * p.tokens == 0) return nullptr;
  if (p.x == nullptr || p.gate == nullptr || p.y == nullptr)
    return "gate_residual_cuda: x, gate and y must not be null";
  return nullptr;
}

cudaError_t adaln_modulate_cuda(const AdaLNCudaParams& p, cudaStream_t stream) {
  if (adaln_modulate_cuda_unsupported(p) != nullptr) return cudaErrorInvalidValue;
  if (p.batch * p.tokens == 0) return cudaSuccess;
  switch (p.dtype) {
    case CudaDtype::kFloat32: return launch_adaln_modulate<float>(p, stream);
    case CudaDtype::kBFloat16: return launch_adaln_modulate<__nv_bfloat16>(p, stream);
    case CudaDtype::kFloat16: return launch_adaln_modulate<__half>(p, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t gate_residual_cuda(const GateResidualCudaParams& p, cudaStream_t stream) {
  if (gate_residual_cuda_unsupported(p) != nullptr) return cudaErrorInvalidValue;
  if (p.batch * p.tokens == 0) return cudaSuccess;
  switch (p.dtype) {
    case CudaDtype::kFloat32: return launch_gate_residual<float>(p, stream);
    case CudaDtype::kBFloat16: return launch_gate_residual<__nv_bfloat16>(p, stream);
    case CudaDtype::kFloat16: return launch_gate_residual<__half>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dit::kernels::cuda
