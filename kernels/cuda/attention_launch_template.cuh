#pragma once
// Host side of the attention forward: launches a configuration of attention_kernel.cuh.
// Included only by the attention_fwd_hdim*_*.cu files, one (dtype, head dim) each.
#include <cuda_runtime.h>

#include <utility>

#include "attention_kernel.cuh"
#include "attention_launch.h"

namespace dit::kernels::cuda {
namespace attention_detail {

template <class Traits, CudaDtype kDtype>
cudaError_t launch_attention_fwd(const AttentionCudaParams& p, cudaStream_t stream) {
  const auto kernel = attention_fwd_kernel<Traits, kDtype>;
  if constexpr (Traits::kSmemBytes > 48 * 1024) {  // above the default limit: opt in
    const cudaError_t err = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Traits::kSmemBytes);
    if (err != cudaSuccess) return err;
  }
  const dim3 grid((p.nq + Traits::kBlockM - 1) / Traits::kBlockM, p.heads, p.batch);
  kernel<<<grid, Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  return cudaGetLastError();
}

template <CudaDtype kDtype, int kHeadDim, int... kConfigs>
cudaError_t launch_config(const AttentionCudaParams& p, int config, cudaStream_t stream,
                          std::integer_sequence<int, kConfigs...>) {
  cudaError_t result = cudaErrorInvalidValue;
  ((config == kConfigs
        ? (void)(result = launch_attention_fwd<AttentionTraitsFor<kHeadDim, kConfigs>, kDtype>(
                     p, stream))
        : (void)0),
   ...);
  return result;
}

}  // namespace attention_detail

template <CudaDtype kDtype, int kHeadDim>
cudaError_t run_attention_fwd(const AttentionCudaParams& params, int config, cudaStream_t stream) {
  return attention_detail::launch_config<kDtype, kHeadDim>(
      params, config, stream, std::make_integer_sequence<int, kAttentionConfigCount>{});
}

}  // namespace dit::kernels::cuda
