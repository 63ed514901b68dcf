#pragma once
// The per-(dtype, head dim) entry points behind attention_forward_cuda. Each is defined in
// attention_launch_template.cuh and explicitly instantiated in its own attention_fwd_hdim*_*.cu,
// so the eight instantiations compile in parallel and the dispatcher compiles none of them.
#include <cuda_runtime_api.h>

#include "attention_params.h"

namespace dit::kernels::cuda {

// Launches configuration `config` (attention_tile_config(kHeadDim, config)) for checked parameters.
template <CudaDtype kDtype, int kHeadDim>
cudaError_t run_attention_fwd(const AttentionCudaParams& params, int config, cudaStream_t stream);

}  // namespace dit::kernels::cuda
