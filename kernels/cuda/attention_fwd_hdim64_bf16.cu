// Attention forward, head dim 64, bf16: every tile configuration (attention_traits.h).
#include "attention_launch_template.cuh"

namespace dit::kernels::cuda {
template cudaError_t run_attention_fwd<CudaDtype::kBFloat16, 64>(const AttentionCudaParams&, int,
                                                                 cudaStream_t);
}  // namespace dit::kernels::cuda
