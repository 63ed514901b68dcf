#pragma once
// adaLN pieces on CUDA, fp32 math for fp32, bf16 or fp16 tensors: their plain parameters and
// C-style API. No torch and no device code.
//   adaln_modulate_cuda: out = LN(x) * (1 + scale[b]) + shift[b], LayerNorm without affine
//   gate_residual_cuda:  x += gate[b] * y, in place (adaLN-Zero gated residual)
#include <cuda_runtime_api.h>

#include <cstdint>

#include "dtype.h"

namespace dit::kernels::cuda {

struct AdaLNCudaParams {
  const void* x = nullptr;         // [B, N, D] contiguous
  const void* shift = nullptr;     // [B, D]: row b at shift + b * shift_batch_stride, unit stride
  const void* scale = nullptr;     // [B, D]: row b at scale + b * scale_batch_stride, unit stride
  void* out = nullptr;             // [B, N, D] contiguous; may be x itself
  int64_t shift_batch_stride = 0;  // elements (e.g. 6D for chunks of the adaLN projection)
  int64_t scale_batch_stride = 0;
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
  CudaDtype dtype = CudaDtype::kBFloat16;  // of x, shift, scale and out alike
};

struct GateResidualCudaParams {
  void* x = nullptr;           // [B, N, D] contiguous, updated in place
  const void* gate = nullptr;  // [B, D]: row b at gate + b * gate_batch_stride, unit stride
  const void* y = nullptr;     // [B, N, D] contiguous
  int64_t gate_batch_stride = 0;
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t dim = 0;
  CudaDtype dtype = CudaDtype::kBFloat16;  // of x, gate and y alike
};

// nullptr when the call can run, else a sentence naming the field and what was expected.
// Any element-aligned pointers and strides run; 16-byte aligned rows (D a multiple of 16 bytes,
// aligned pointers and batch strides) take the vectorised path.
const char* adaln_modulate_cuda_unsupported(const AdaLNCudaParams& params);
const char* gate_residual_cuda_unsupported(const GateResidualCudaParams& params);

// Enqueue on `stream`; cudaErrorInvalidValue when the matching *_unsupported objects.
cudaError_t adaln_modulate_cuda(const AdaLNCudaParams& params, cudaStream_t stream);
cudaError_t gate_residual_cuda(const GateResidualCudaParams& params, cudaStream_t stream);

}  // namespace dit::kernels::cuda
