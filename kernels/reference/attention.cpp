// Reference attention and adaLN in plain libtorch ops: the ground truth every backend is
// tested against.
#include <dit/error.h>
#include <dit/kernels.h>

#include <cmath>

#include "kernels/backends.h"

namespace dit::kernels::reference {

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts) {
  const double scale = opts.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, Nq, Nk]
  if (opts.key_mask) {
    auto keep = opts.key_mask->to(torch::kBool).view({q.size(0), 1, 1, k.size(2)});
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);  // [B, H, Nq, Dh]
}

torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale) {
  // x: [B, N, D]; shift, scale: [B, D]
  auto normed = torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6);
  return normed * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

torch::Tensor gate_residual(const torch::Tensor& x, const torch::Tensor& gate,
                            const torch::Tensor& y) {
  return x + gate.unsqueeze(1) * y;  // [B, N, D]
}

}  // namespace dit::kernels::reference
