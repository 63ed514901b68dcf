#pragma once
// Flash-style attention forward on CUDA tensor cores (sm80+): its plain parameters and its
// C-style API. No torch and no device code: a torch bridge (.cpp) fills the struct from tensors,
// an autotuner times the configurations by index.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "dtype.h"

namespace dit::kernels::cuda {

// out = softmax(q k^T * softmax_scale, masked keys excluded) v for every (batch b, head h):
//   q [B, H, Nq, D]: element (b, h, i, d) at q + b*q_stride[0] + h*q_stride[1] + i*q_stride[2] + d
//   k, v [B, H, Nk, D]: the same with k_stride, v_stride (unit stride along d for all three, so
//       views into a packed qkv projection [B, N, 3, H, D] need no copy)
//   out [B, Nq, H, D], contiguous: element (b, i, h, d) at out + ((b*Nq + i)*H + h)*D + d, so out
//       viewed as [B, Nq, H*D] is the input of the attention block's output projection.
// Requirements (attention_cuda_unsupported names the one that fails): dtype bf16 or fp16 (q, k,
// v and out alike), head_dim one of 64, 72, 96, 128; q, k, v, out 16-byte aligned and every
// stride a multiple of 8 elements (rows are copied in 16-byte pieces); batch and heads at most
// 65535 (grid dimensions). Nk = 0 is allowed: every output is 0.
struct AttentionCudaParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  int64_t q_stride[3] = {};  // elements between batches, heads, rows
  int64_t k_stride[3] = {};
  int64_t v_stride[3] = {};
  // Optional key-padding mask, uint8 [B, Nk], nonzero = keep; row b starts at
  // key_mask + b * key_mask_batch_stride. Masked keys get weight 0; a query whose keys are all
  // masked outputs 0 (the cpu backend's convention).
  const uint8_t* key_mask = nullptr;
  int64_t key_mask_batch_stride = 0;
  int batch = 0;
  int heads = 0;
  int nq = 0;
  int nk = 0;
  int head_dim = 0;
  float softmax_scale = 0.f;  // chosen by the caller, usually 1/sqrt(head_dim)
  CudaDtype dtype = CudaDtype::kBFloat16;
};

// Tile configurations for a head dim, for an autotuner: indices 0 .. count-1, each with a
// stable name (e.g. "q128_k64_w4": 128 query rows per CTA, key tiles of 64, 4 warps).
// Count 0 and name nullptr for an unsupported head dim or index.
int attention_cuda_config_count(int head_dim);
const char* attention_cuda_config_name(int head_dim, int config);

// nullptr when attention_forward_cuda can run these parameters with this configuration, else
// a sentence naming the field and what was expected.
const char* attention_cuda_unsupported(const AttentionCudaParams& params, int config);

// Enqueues the forward on `stream`. cudaErrorInvalidValue when attention_cuda_unsupported
// objects, else the launch's error (cudaSuccess when queued). Asynchronous like any launch.
cudaError_t attention_forward_cuda(const AttentionCudaParams& params, int config,
                                   cudaStream_t stream);

}  // namespace dit::kernels::cuda
