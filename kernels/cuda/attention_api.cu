// The C-style API of the CUDA attention forward (attention_params.h): parameter checks, config
// names, and the static dispatch on (head dim, dtype) to the instantiations compiled in
// attention_fwd_hdim*_*.cu. Host code only.
#include <cmath>
#include <cstdint>
#include <limits>

#include "attention_launch.h"
#include "attention_params.h"
#include "attention_traits.h"

namespace dit::kernels::cuda {

namespace {

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool strides_in_chunks(const int64_t (&stride)[3]) {
  return stride[0] % 8 == 0 && stride[1] % 8 == 0 && stride[2] % 8 == 0;
}

// Tile counts are formed as (n + block - 1) / block in int.
constexpr int kMaxSequence = std::numeric_limits<int>::max() - 256;

}  // namespace

int attention_cuda_config_count(int head_dim) {
  return attention_head_dim_supported(head_dim) ? kAttentionConfigCount : 0;
}

const char* attention_cuda_config_name(int head_dim, int config) {
  if (config < 0 || config >= attention_cuda_config_count(head_dim)) return nullptr;
  return attention_tile_config(head_dim, config).name;
}

const char* attention_cuda_unsupported(const AttentionCudaParams& p, int config) {
  if (p.dtype != CudaDtype::kBFloat16 && p.dtype != CudaDtype::kFloat16)
    return "attention_forward_cuda: dtype must be bf16 or fp16";
  if (!attention_head_dim_supported(p.head_dim))
    return "attention_forward_cuda: head_dim must be 64, 72, 96 or 128";
  if (config < 0 || config >= kAttentionConfigCount)
    return "attention_forward_cuda: config must be in [0, attention_cuda_config_count(head_dim))";
  if (p.batch < 0 || p.heads < 0 || p.nq < 0 || p.nk < 0)
    return "attention_forward_cuda: batch, heads, nq and nk must not be negative";
  if (p.batch > 65535 || p.heads > 65535)
    return "attention_forward_cuda: batch and heads must be at most 65535 (grid z and y)";
  if (p.nq > kMaxSequence || p.nk > kMaxSequence)
    return "attention_forward_cuda: nq and nk must be below 2^31 - 256";
  if (!std::isfinite(p.softmax_scale))
    return "attention_forward_cuda: softmax_scale must be finite";
  if (p.batch == 0 || p.heads == 0 || p.nq == 0) return nullptr;  // nothing to compute
  if (p.q == nullptr || p.out == nullptr || (p.nk > 0 && (p.k == nullptr || p.v == nullptr)))
    return "attention_forward_cuda: q, k, v and out must not be null";
  if (!aligned16(p.q) || !aligned16(p.out) || (p.nk > 0 && (!aligned16(p.k) || !aligned16(p.v))))
    return "attention_forward_cuda: q, k, v and out must be 16-byte aligned";
  if (!strides_in_chunks(p.q_stride) ||
      (p.nk > 0 && (!strides_in_chunks(p.k_stride) || !strides_in_chunks(p.v_stride))))
    return "attention_forward_cuda: q, k and v strides must be multiples of 8 elements";
  return nullptr;
}

cudaError_t attention_forward_cuda(const AttentionCudaParams& p, int config, cudaStream_t stream) {
  if (attention_cuda_unsupported(p, config) != nullptr) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads == 0 || p.nq == 0) return cudaSuccess;
  const bool bf16 = p.dtype == CudaDtype::kBFloat16;
  constexpr CudaDtype kBf16 = CudaDtype::kBFloat16, kFp16 = CudaDtype::kFloat16;
  switch (p.head_dim) {
    case 64:
      return bf16 ? run_attention_fwd<kBf16, 64>(p, config, stream)
                  : run_attention_fwd<kFp16, 64>(p, config, stream);
    case 72:
      return bf16 ? run_attention_fwd<kBf16, 72>(p, config, stream)
                  : run_attention_fwd<kFp16, 72>(p, config, stream);
    case 96:
      return bf16 ? run_attention_fwd<kBf16, 96>(p, config, stream)
                  : run_attention_fwd<kFp16, 96>(p, config, stream);
    case 128:
      return bf16 ? run_attention_fwd<kBf16, 128>(p, config, stream)
                  : run_attention_fwd<kFp16, 128>(p, config, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dit::kernels::cuda
