// Chooses a kernel backend from device, dtype and head dimension. Only the reference backend
// exists so far; fused CPU and CUDA backends plug in here.
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>

namespace dit::kernels {

namespace {
void check_attention_shapes(const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v, const AttentionOptions& opts) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw Error(fmt::format("attention: q, k, v must be [B, H, N, Dh], got {}, {}, {} dims",
                            q.dim(), k.dim(), v.dim()));
  if (k.sizes() != v.sizes() || q.size(0) != k.size(0) || q.size(1) != k.size(1) ||
      q.size(3) != k.size(3))
    throw Error("attention: q, k, v shapes disagree (batch, heads or head dim)");
  if (opts.key_mask && (opts.key_mask->dim() != 2 || opts.key_mask->size(0) != q.size(0) ||
                        opts.key_mask->size(1) != k.size(2)))
    throw Error(fmt::format("attention: key_mask must be [B={}, Nk={}]", q.size(0), k.size(2)));
}
}  // namespace

std::string attention_backend(const torch::Tensor&) { return "reference"; }

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts) {
  check_attention_shapes(q, k, v, opts);
  return reference::attention(q, k, v, opts);
}

torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale) {
  return reference::adaln_layernorm(x, shift, scale);
}

}  // namespace dit::kernels
