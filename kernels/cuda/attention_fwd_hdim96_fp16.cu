// Attention forward, head dim 96, fp16: every tile configuration (attention_traits.h).
#include "attention_launch_template.cuh"

namespace dit::kernels::cuda {
template cudaError_t run_attention_fwd<CudaDtype::kFloat16, 96>(const AttentionCudaParams&, int,
                                                                cudaStream_t);
}  // namespace dit::kernels::cuda
