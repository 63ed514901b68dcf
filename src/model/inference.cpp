// DiTInference: DiT::forward without autograd, with per-(batch, tokens) activation buffers reused
// across blocks and calls. Follows DiTBlockImpl::forward line by line (src/model/dit.cpp).
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/kernels.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <iostream>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace dit {

struct DiTInference::Workspace {
  std::mutex mutex;
  int64_t B = -1, N = -1, allocations = 0;
  torch::ScalarType dtype = torch::kFloat32;
  bool inference_mode = false;
  // tokens [B, N, D] (the residual stream, updated in place), ln [B, N, D], qkv [B, N, 3D],
  // proj [B, N, D] (attention projection, then fc2 output), hidden [B, N, mlp]
  torch::Tensor tokens, ln, qkv, proj, hidden;

  void ensure(int64_t b, int64_t n, const DiTConfig& c, const torch::TensorOptions& o) {
    // Buffers made under c10::InferenceMode cannot be updated in place outside it: remake them
    // when the mode changes.
    const bool im = c10::InferenceMode::is_enabled();
    if (b == B && n == N && o.dtype().toScalarType() == dtype && im == inference_mode) return;
    inference_mode = im;
    const int64_t D = c.hidden_size;
    tokens = torch::empty({b, n, D}, o);
    ln = torch::empty({b, n, D}, o);
    qkv = torch::empty({b, n, 3 * D}, o);
    proj = torch::empty({b, n, D}, o);
    hidden = torch::empty({b, n, c.mlp_hidden()}, o);
    B = b, N = n, dtype = o.dtype().toScalarType();
    ++allocations;
  }
};

// bfloat16 copies of every linear layer's weight and bias, keyed by the layer.
struct DiTInference::BF16Weights {
  std::unordered_map<const torch::nn::LinearImpl*, std::pair<torch::Tensor, torch::Tensor>> w;
};

LinearPrecision parse_linear_precision(const std::string& name, const std::string& where) {
  if (name == "fp32" || name == "f32" || name.empty()) return LinearPrecision::kFloat32;
  if (name == "bf16") return LinearPrecision::kBF16;
  throw Error(fmt::format("{}: linear precision must be fp32 or bf16, got '{}'", where, name));
}

DiTInference::DiTInference(DiT model, LinearPrecision precision)
    : model_(std::move(model)), ws_(std::make_shared<Workspace>()) {
  if (precision == LinearPrecision::kBF16) {
#if defined(__x86_64__) && defined(__GNUC__)
    // Without AVX512-BF16 oneDNN emulates bf16 products: about 40x slower than fp32 on an AVX2
    // machine (dit-bench gemm), so say so rather than run slowly without a word.
    static std::once_flag warned;
    if (!__builtin_cpu_supports("avx512bf16"))
      std::call_once(warned, [] {
        std::cerr << "dit: warning: bf16 linear layers on a CPU without AVX512-BF16 are emulated "
                     "and much slower than fp32 (compare with `dit-bench gemm`)\n";
      });
#endif
    torch::NoGradGuard no_grad;
    bf16_ = std::make_shared<BF16Weights>();
    for (auto& block : *model_->blocks) {
      auto& blk = *block->as<DiTBlockImpl>();
      for (auto* l : {blk.attn->qkv.get(), blk.attn->proj.get(), blk.mlp->fc1.get(), blk.mlp->fc2.get()})
        bf16_->w[l] = {l->weight.to(torch::kBFloat16), l->bias.to(torch::kBFloat16)};
    }
  }
}

int64_t DiTInference::allocations() const { return ws_->allocations; }

namespace {

using BF16Map = std::unordered_map<const torch::nn::LinearImpl*, std::pair<torch::Tensor, torch::Tensor>>;
thread_local const BF16Map* t_bf16 = nullptr;  // set by run_blocks for a bf16 DiTInference

// out [M, out] = a [M, in] W^T + b, into an existing buffer (bf16 products when t_bf16 is set).
void linear_into(torch::Tensor out2d, const torch::Tensor& a2d, const torch::nn::Linear& l) {
  if (t_bf16) {
    const auto& wb = t_bf16->at(l.get());
    out2d.copy_(at::addmm(wb.second, a2d.to(torch::kBFloat16), wb.first.t()));
    return;
  }
  at::addmm_out(out2d, l->bias, a2d, l->weight.t());
}

// One DiTBlock on the workspace's residual stream (w.tokens updated in place).
void block_inference(DiTBlockImpl& blk, int64_t heads, torch::Tensor& tokens, torch::Tensor& ln, torch::Tensor& qkv,
                     torch::Tensor& proj, torch::Tensor& hidden, const torch::Tensor& c,
                     const std::optional<torch::Tensor>& key_mask) {
  const int64_t B = tokens.size(0), N = tokens.size(1), D = tokens.size(2);
  auto mod = blk.adaLN_modulation->forward(c).chunk(6, 1);  // 6 x [B, D]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  auto ln2d = ln.view({B * N, D}), proj2d = proj.view({B * N, D});
  // Attention branch.
  kernels::adaln_layernorm_out(ln, tokens, shift_msa, scale_msa);       // [B, N, D]
  linear_into(qkv.view({B * N, 3 * D}), ln2d, blk.attn->qkv);           // [B, N, 3D]
  auto q_k_v = qkv.view({B, N, 3, heads, D / heads}).permute({2, 0, 3, 1, 4});
  kernels::AttentionOptions opts;
  opts.key_mask = key_mask;
  auto att = kernels::attention(q_k_v[0], q_k_v[1], q_k_v[2], opts);   // [B, H, N, Dh]
  linear_into(proj2d, att.transpose(1, 2).reshape({B * N, D}), blk.attn->proj);
  kernels::gate_residual_(tokens, gate_msa, proj);                      // x += g * attn
  // MLP branch.
  kernels::adaln_layernorm_out(ln, tokens, shift_mlp, scale_mlp);
  auto hidden2d = hidden.view({B * N, hidden.size(2)});
  linear_into(hidden2d, ln2d, blk.mlp->fc1);                             // [B, N, mlp]
  at::gelu_(hidden, "tanh");
  linear_into(proj2d, hidden2d, blk.mlp->fc2);                           // [B, N, D]
  kernels::gate_residual_(tokens, gate_mlp, proj);                       // h += g * mlp
}

}  // namespace

torch::Tensor DiTInference::run_blocks(const torch::Tensor& tokens_in, const torch::Tensor& c,
                                       const std::optional<torch::Tensor>& key_mask) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model_->config();
  if (tokens_in.dim() != 3 || tokens_in.size(2) != cfg.hidden_size)
    throw Error(fmt::format("DiTInference: tokens must be [B, N, {}], got {}", cfg.hidden_size,
                            fmt::join(tokens_in.sizes(), "x")));
  std::lock_guard<std::mutex> lock(ws_->mutex);
  auto& w = *ws_;
  w.ensure(tokens_in.size(0), tokens_in.size(1), cfg, tokens_in.options());
  w.tokens.copy_(tokens_in);
  struct Bf16Scope {  // bf16 linears for this call only
    explicit Bf16Scope(const BF16Map* m) { t_bf16 = m; }
    ~Bf16Scope() { t_bf16 = nullptr; }
  } bf16_scope(bf16_ ? &bf16_->w : nullptr);
  for (auto& block : *model_->blocks)
    block_inference(*block->as<DiTBlockImpl>(), cfg.num_heads, w.tokens, w.ln, w.qkv, w.proj,
                    w.hidden, c, key_mask);
  return model_->final_layer->forward(w.tokens, c);  // [B, N, p*p*out], fresh
}

torch::Tensor DiTInference::forward(const torch::Tensor& x, const torch::Tensor& t,
                                    const torch::Tensor& y, const torch::Tensor& d) {
  torch::NoGradGuard no_grad;
  const auto& c = model_->config();
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) != c.input_size ||
      x.size(3) != c.input_size)
    throw Error(fmt::format("DiTInference forward: x must be [B, {}, {}, {}], got {}",
                            c.in_channels, c.input_size, c.input_size, fmt::join(x.sizes(), "x")));
  if (t.dim() != 1 || t.size(0) != x.size(0))
    throw Error(fmt::format("DiTInference forward: t must be [B={}], got {} dims", x.size(0), t.dim()));
  auto tokens = model_->embed_patches(x);  // [B, N, D]
  auto cond = model_->condition(t, y, d);  // [B, D]
  return model_->unpatchify(run_blocks(tokens, cond));  // [B, out, H, W]
}

}  // namespace dit
