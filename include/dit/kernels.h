#pragma once
// Kernels behind the DiT blocks. Each op has a reference implementation in plain libtorch ops
// (kernels/reference) and backends chosen by kernels/dispatch.cpp from device, dtype and
// head dimension. Every backend is tested against the reference.
#include <torch/torch.h>

#include <optional>
#include <string>

namespace dit::kernels {

struct AttentionOptions {
  // Key-padding mask [B, Nk], true where the key is a real token. Queries at padded positions
  // still get a (meaningless but finite) output; callers mask them afterwards.
  std::optional<torch::Tensor> key_mask;
  // Softmax scale; default 1/sqrt(head_dim).
  std::optional<double> scale;
};

// softmax(q k^T * scale + mask) v for q [B, H, Nq, Dh], k and v [B, H, Nk, Dh] -> [B, H, Nq, Dh].
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts = {});

// LayerNorm without affine (eps 1e-6) followed by adaLN modulation:
//   LN(x) * (1 + scale) + shift, x [B, N, D], shift and scale [B, D].
torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale);

// Name of the backend the dispatcher picks for these inputs ("reference", later "cpu", "cuda").
std::string attention_backend(const torch::Tensor& q);

namespace reference {
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts);
torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale);
}  // namespace reference

}  // namespace dit::kernels
