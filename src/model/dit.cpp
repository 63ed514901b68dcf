// DiT modules (Peebles & Xie 2023), following the reference implementation's structure and
// parameter names. Shapes: B batch, N tokens, D hidden, C channels, p patch.
#include <dit/error.h>
#include <dit/kernels.h>
#include <dit/model.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <cmath>

#include "src/model/prediction.h"

namespace dit {

namespace nn = torch::nn;

namespace {
nn::Linear linear(int64_t in, int64_t out) { return nn::Linear(nn::LinearOptions(in, out)); }

// SiLU followed by Linear(D, k*D), registered as children "0" and "1" like nn.Sequential.
nn::Sequential ada_ln_modulation(int64_t hidden, int64_t k) {
  return nn::Sequential(nn::SiLU(), linear(hidden, k * hidden));
}
}  // namespace

torch::Tensor timestep_frequencies(const torch::Tensor& t, int64_t dim, double max_period) {
  // Reference DiT TimestepEmbedder.timestep_embedding: [cos(t f), sin(t f)],
  // f_i = exp(-ln(max_period) i / half), i < half.
  const int64_t half = dim / 2;
  auto freqs = torch::exp(-std::log(max_period) *
                          torch::arange(half, t.options().dtype(torch::kFloat32)) / half);
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);       // [B, 2*half]
  if (dim % 2) emb = torch::cat({emb, torch::zeros_like(emb.narrow(1, 0, 1))}, -1);
  return emb;
}

torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid) {
  // MAE / reference DiT get_2d_sincos_pos_embed: token m = i * grid + j (row i, column j)
  // gets [sincos_{D/2}(j), sincos_{D/2}(i)], each sincos = [sin(pos w_k), cos(pos w_k)],
  // w_k = 10000^(-k / (D/4)). Computed in float64 as numpy does.
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto omega = 1.0 / torch::pow(10000.0, torch::arange(dim / 4, opts) / (dim / 4.0));  // [D/4]
  auto pos = torch::arange(grid, opts);
  auto ii = pos.view({grid, 1}).expand({grid, grid}).reshape({-1});  // row index per token
  auto jj = pos.view({1, grid}).expand({grid, grid}).reshape({-1});  // column index
  auto sincos = [&](const torch::Tensor& p) {
    auto out = p.unsqueeze(1) * omega.unsqueeze(0);  // [N, D/4]
    return torch::cat({torch::sin(out), torch::cos(out)}, 1);
  };
  return torch::cat({sincos(jj), sincos(ii)}, 1).to(torch::kFloat32);  // [N, D]
}

// ---- embedders -------------------------------------------------------------------------------

TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t hidden, int64_t frequency_size_)
    : frequency_size(frequency_size_) {
  mlp = register_module("mlp", nn::Sequential(linear(frequency_size, hidden), nn::SiLU(),
                                              linear(hidden, hidden)));
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  auto freq = timestep_frequencies(t, frequency_size);  // [B, 256]
  auto w = mlp->parameters()[0];
  return mlp->forward(freq.to(w.dtype()));  // [B, D]
}

PatchEmbedImpl::PatchEmbedImpl(int64_t in_channels, int64_t hidden, int64_t patch) {
  proj = register_module(
      "proj", nn::Conv2d(nn::Conv2dOptions(in_channels, hidden, patch).stride(patch).bias(true)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj->forward(x).flatten(2).transpose(1, 2);  // [B, C, H, W] -> [B, N, D]
}

LabelEmbedderImpl::LabelEmbedderImpl(int64_t num_classes, int64_t hidden) {
  embedding_table = register_module("embedding_table", nn::Embedding(num_classes + 1, hidden));
}

torch::Tensor LabelEmbedderImpl::forward(const torch::Tensor& y) {
  return embedding_table->forward(y);  // [B] -> [B, D]
}

// ---- transformer block -------------------------------------------------------------------------

AttentionImpl::AttentionImpl(int64_t hidden, int64_t heads_) : heads(heads_) {
  qkv = register_module("qkv", linear(hidden, 3 * hidden));
  proj = register_module("proj", linear(hidden, hidden));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x,
                                     const std::optional<torch::Tensor>& key_mask) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  auto qkv_ = qkv->forward(x).view({B, N, 3, heads, D / heads}).permute({2, 0, 3, 1, 4});
  // q, k, v: [B, H, N, Dh]
  kernels::AttentionOptions opts;
  opts.key_mask = key_mask;
  // [B, H, N, Dh]; the cpu backend stores it as [B, N, H, Dh], so the reshape below is free.
  auto out = kernels::attention(qkv_[0], qkv_[1], qkv_[2], opts);
  return proj->forward(out.transpose(1, 2).reshape({B, N, D}));  // [B, N, D]
}

MlpImpl::MlpImpl(int64_t hidden, int64_t mlp_hidden) {
  fc1 = register_module("fc1", linear(hidden, mlp_hidden));
  fc2 = register_module("fc2", linear(mlp_hidden, hidden));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x), "tanh"));  // [B, N, D]
}

DiTBlockImpl::DiTBlockImpl(int64_t hidden, int64_t heads, int64_t mlp_hidden) {
  attn = register_module("attn", Attention(hidden, heads));
  mlp = register_module("mlp", Mlp(hidden, mlp_hidden));
  adaLN_modulation = register_module("adaLN_modulation", ada_ln_modulation(hidden, 6));
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& c,
                                    const std::optional<torch::Tensor>& key_mask) {
  // adaLN-Zero: shift/scale/gate for attention (msa), then for the MLP; each [B, D].
  auto mod = adaLN_modulation->forward(c).chunk(6, 1);
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  // h = x + gate_msa[:, None] * attn(modulate(LN(x))); out = h + gate_mlp[:, None] * mlp(...)
  auto h = kernels::gate_residual(
      x, gate_msa, attn->forward(kernels::adaln_layernorm(x, shift_msa, scale_msa), key_mask));
  return kernels::gate_residual(
      h, gate_mlp, mlp->forward(kernels::adaln_layernorm(h, shift_mlp, scale_mlp)));  // [B, N, D]
}

FinalLayerImpl::FinalLayerImpl(int64_t hidden, int64_t out_features) {
  linear = register_module("linear", dit::linear(hidden, out_features));
  adaLN_modulation = register_module("adaLN_modulation", ada_ln_modulation(hidden, 2));
}

torch::Tensor FinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto mod = adaLN_modulation->forward(c).chunk(2, 1);  // shift, scale: [B, D]
  return linear->forward(kernels::adaln_layernorm(x, mod[0], mod[1]));  // [B, N, p*p*C]
}

// ---- DiT -------------------------------------------------------------------------------------

DiTImpl::DiTImpl(const DiTConfig& config, bool initialize) : config_(config) {
  config_.validate();
  const auto& c = config_;
  x_embedder = register_module("x_embedder", PatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
  t_embedder = register_module("t_embedder", TimestepEmbedder(c.hidden_size));
  if (c.step_conditioning)
    dt_embedder = register_module("dt_embedder", TimestepEmbedder(c.hidden_size));
  if (c.num_classes > 0)
    y_embedder = register_module("y_embedder", LabelEmbedder(c.num_classes, c.hidden_size));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i)
    blocks->push_back(DiTBlock(c.hidden_size, c.num_heads, c.mlp_hidden()));
  final_layer = register_module(
      "final_layer", FinalLayer(c.hidden_size, c.patch_size * c.patch_size * c.out_channels()));
  pos_embed = register_buffer(
      "pos_embed", sincos_pos_embed_2d(c.hidden_size, c.grid_size()).unsqueeze(0));  // [1, N, D]
  if (initialize) initialize_weights();
}

void initialize_dit_weights(nn::Module& net, TimestepEmbedder& t_embedder,
                            TimestepEmbedder& dt_embedder, LabelEmbedder& y_embedder,
                            nn::ModuleList& blocks, FinalLayer& final_layer,
                            const std::function<void()>& front_end) {
  torch::NoGradGuard no_grad;
  for (auto& module : net.modules(/*include_self=*/false)) {
    if (auto* lin = module->as<nn::LinearImpl>()) {
      nn::init::xavier_uniform_(lin->weight);
      nn::init::zeros_(lin->bias);
    }
  }
  if (front_end) front_end();
  if (y_embedder) nn::init::normal_(y_embedder->embedding_table->weight, 0.0, 0.02);
  for (int i : {0, 2})
    nn::init::normal_(t_embedder->mlp[i]->as<nn::LinearImpl>()->weight, 0.0, 0.02);
  if (dt_embedder) {
    nn::init::normal_(dt_embedder->mlp[0]->as<nn::LinearImpl>()->weight, 0.0, 0.02);
    nn::init::zeros_(dt_embedder->mlp[2]->as<nn::LinearImpl>()->weight);
  }
  // adaLN-Zero: every block starts as the identity, and the output as zero.
  auto zero_linear = [](nn::LinearImpl* l) {
    nn::init::zeros_(l->weight);
    nn::init::zeros_(l->bias);
  };
  for (auto& block : *blocks)
    zero_linear(block->as<DiTBlockImpl>()->adaLN_modulation[1]->as<nn::LinearImpl>());
  zero_linear(final_layer->adaLN_modulation[1]->as<nn::LinearImpl>());
  zero_linear(final_layer->linear.get());
}

void DiTImpl::initialize_weights() {
  initialize_dit_weights(*this, t_embedder, dt_embedder, y_embedder, blocks, final_layer, [&] {
    // Patch embedding initialised like a linear layer on the flattened kernel.
    auto& w = x_embedder->proj->weight;
    nn::init::xavier_uniform_(w.view({w.size(0), -1}));
    nn::init::zeros_(x_embedder->proj->bias);
  });
}

std::shared_ptr<FlowNetImpl> DiTImpl::fresh() const { return std::make_shared<DiTImpl>(config_); }

torch::Tensor DiTImpl::flow(const torch::Tensor& x, const torch::Tensor& t,
                            const FlowInputs& inputs, const torch::Tensor& d) {
  if (config_.num_classes > 0 && !inputs.labels.defined())
    throw Error("DiT: a class-conditional model needs labels (the null class for none)");
  return detail::model_output(
      config_, forward(x, detail::model_time(config_, t), inputs.labels, detail::model_step(config_, d)));
}

torch::Tensor DiTImpl::condition(const torch::Tensor& t, const torch::Tensor& y,
                                 const torch::Tensor& d) {
  auto c = t_embedder->forward(t);  // [B, D]
  if (y_embedder) c = c + y_embedder->forward(y);
  if (dt_embedder) {
    if (d.defined() && (d.dim() != 1 || d.size(0) != t.size(0)))
      throw Error(fmt::format("DiT: step sizes d must be [B={}], got {} dims", t.size(0), d.dim()));
    c = c + dt_embedder->forward(d.defined() ? d : torch::zeros_like(t));
  } else if (d.defined()) {
    throw Error("DiT: step sizes given to a model without step conditioning (no dt_embedder)");
  }
  return c;
}

torch::Tensor DiTImpl::embed_patches(const torch::Tensor& x) {
  // The patch embedding is a transposed view ([B, D, N] memory); the sum is made contiguous
  // once here, so every block gets the row-major [B, N, D] tokens the fused kernels take
  // (kernels/device_layout.h: the cuda backend refuses other layouts).
  return (x_embedder->forward(x) + pos_embed).contiguous();  // [B, N, D]
}

torch::Tensor DiTImpl::run_blocks(torch::Tensor tokens, const torch::Tensor& c,
                                  const std::optional<torch::Tensor>& key_mask) {
  for (auto& block : *blocks) tokens = block->as<DiTBlockImpl>()->forward(tokens, c, key_mask);
  return final_layer->forward(tokens, c);  // [B, N, p*p*out]
}

torch::Tensor DiTImpl::unpatchify(const torch::Tensor& x) {
  const int64_t B = x.size(0), g = config_.grid_size(), p = config_.patch_size,
                C = config_.out_channels();
  // [B, N, p*p*C] -> [B, h, w, p, q, C] -> [B, C, h, p, w, q] -> [B, C, H, W]
  return x.reshape({B, g, g, p, p, C}).permute({0, 5, 1, 3, 2, 4}).reshape({B, C, g * p, g * p});
}

torch::Tensor DiTImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                               const torch::Tensor& y, const torch::Tensor& d) {
  const auto& c = config_;
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) != c.input_size ||
      x.size(3) != c.input_size)
    throw Error(fmt::format("DiT forward: x must be [B, {}, {}, {}], got {}", c.in_channels,
                            c.input_size, c.input_size, fmt::join(x.sizes(), "x")));
  if (t.dim() != 1 || t.size(0) != x.size(0))
    throw Error(fmt::format("DiT forward: t must be [B={}], got {} dims", x.size(0), t.dim()));
  auto tokens = embed_patches(x);                    // [B, N, D]
  auto cond = condition(t, y, d);                    // [B, D]
  return unpatchify(run_blocks(tokens, cond));       // [B, out, H, W]
}

}  // namespace dit
