// BlockStackInference and DiTInference (include/dit/inference.h): the block stack without
// autograd, with per-(batch, tokens) activation buffers reused across blocks and calls. Follows
// DiTBlockImpl::forward line by line (src/model/dit.cpp).
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/kernels.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <cstdlib>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace dit {

LinearPrecision default_linear_precision() {
  const char* env = std::getenv("DIT_LINEAR_PRECISION");
  return parse_linear_precision(env ? env : "", "DIT_LINEAR_PRECISION");
}

std::string place_for_sampling(FlowNetImpl& net, const Placement& placement,
                               const std::string& flag_device, const std::string& flag_dtype) {
  const torch::Device device = resolve_device(placement.device, flag_device);
  const std::string& dtype = placement.dtype;
  if (!dtype.empty() && dtype != "fp32" && dtype != "bf16" && dtype != "fp16")
    throw Error(fmt::format("{} {}: expected fp32, bf16 or fp16", flag_dtype, dtype));
  if (device.is_cpu()) {
    if (dtype == "fp16")
      throw Error(fmt::format("{} fp16: runs on a GPU only (--device cuda); on the CPU use fp32, "
                              "or bf16 on CPUs with AVX512-BF16", flag_dtype));
    net.to(torch::kCPU, torch::kFloat32);
    const auto linears = kernels::resolve_precision(
        dtype.empty() ? default_linear_precision() : parse_linear_precision(dtype, flag_dtype));
    net.inference_precision = linears;
    return fmt::format("cpu fp32 (linears {})", kernels::precision_name(linears));
  }
  const auto weights = dtype == "bf16" ? torch::kBFloat16 : dtype == "fp16" ? torch::kHalf : torch::kFloat32;
  net.to(device, weights);
  net.inference_precision = LinearPrecision::kFloat32;  // torch::linear in the weights' dtype
  return fmt::format("{} {}", device.str(), dtype.empty() ? "fp32" : dtype);
}

struct BlockStackInference::Workspace {
  std::mutex mutex;
  int64_t B = -1, N = -1, D = -1, allocations = 0;
  torch::ScalarType dtype = torch::kFloat32;
  bool inference_mode = false, bf16_hidden = false;
  // tokens [B, N, D] (the residual stream, updated in place), ln [B, N, D], qkv [B, N, 3D],
  // proj [B, N, D] (attention projection, then fc2 output), hidden [B, N, mlp] (bfloat16 on
  // the packed bf16 path: fc1 writes it, fc2 reads it)
  torch::Tensor tokens, ln, qkv, proj, hidden;

  void ensure(int64_t b, int64_t n, int64_t d, int64_t mlp, const torch::TensorOptions& o, bool bf16h) {
    // Buffers made under c10::InferenceMode cannot be updated in place outside it: remake them
    // when the mode changes.
    const bool im = c10::InferenceMode::is_enabled();
    if (b == B && n == N && d == D && o.dtype().toScalarType() == dtype && im == inference_mode &&
        bf16h == bf16_hidden)
      return;
    tokens = torch::empty({b, n, d}, o);
    ln = torch::empty({b, n, d}, o);
    qkv = torch::empty({b, n, 3 * d}, o);
    proj = torch::empty({b, n, d}, o);
    hidden = torch::empty({b, n, mlp}, bf16h ? o.dtype(torch::kBFloat16) : o);
    B = b, N = n, D = d, dtype = o.dtype().toScalarType();
    inference_mode = im, bf16_hidden = bf16h;
    ++allocations;
  }
};

// The block linears: PackedLinear (oneDNN) where available, else bfloat16 copies of the weights
// for torch::linear in bf16 (fp32 then needs nothing here).
struct BlockStackInference::Linears {
  struct Layer {
    std::optional<kernels::PackedLinear> packed;
    torch::Tensor w_bf16, b_bf16;  // torch fallback in bf16
  };
  std::unordered_map<const torch::nn::LinearImpl*, Layer> layers;
  bool packed = false;
};

namespace {

using Linears = BlockStackInference::Linears;

// out [M, out] = a [M, in] W^T + b, into an existing buffer; `gelu`: tanh-GELU applied (fused
// into the GEMM when packed). `out` is bfloat16 only on the packed bf16 path (fc1's output).
void linear_into(const Linears* lin, torch::Tensor out2d, const torch::Tensor& a2d,
                 const torch::nn::Linear& l, bool gelu) {
  if (lin) {
    const auto& layer = lin->layers.at(l.get());
    if (layer.packed) {
      layer.packed->run(a2d, out2d);
      return;
    }
    out2d.copy_(at::addmm(layer.b_bf16, a2d.to(torch::kBFloat16), layer.w_bf16.t()));
  } else {
    at::addmm_out(out2d, l->bias, a2d, l->weight.t());
  }
  if (gelu) at::gelu_(out2d, "tanh");
}

// One DiTBlock on the workspace's residual stream (tokens updated in place).
void block_inference(DiTBlockImpl& blk, const Linears* lin, int64_t heads,
                     BlockStackInference::Workspace& w, const torch::Tensor& c,
                     const std::optional<torch::Tensor>& key_mask) {
  auto &tokens = w.tokens, &ln = w.ln, &qkv = w.qkv, &proj = w.proj, &hidden = w.hidden;
  const int64_t B = tokens.size(0), N = tokens.size(1), D = tokens.size(2);
  auto mod = blk.adaLN_modulation->forward(c).chunk(6, 1);  // 6 x [B, D]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  auto ln2d = ln.view({B * N, D}), proj2d = proj.view({B * N, D});
  // Attention branch.
  kernels::adaln_layernorm_out(ln, tokens, shift_msa, scale_msa);          // [B, N, D]
  linear_into(lin, qkv.view({B * N, 3 * D}), ln2d, blk.attn->qkv, false);  // [B, N, 3D]
  auto q_k_v = qkv.view({B, N, 3, heads, D / heads}).permute({2, 0, 3, 1, 4});
  kernels::AttentionOptions opts;
  opts.key_mask = key_mask;
  auto att = kernels::attention(q_k_v[0], q_k_v[1], q_k_v[2], opts);      // [B, H, N, Dh]
  linear_into(lin, proj2d, att.transpose(1, 2).reshape({B * N, D}), blk.attn->proj, false);
  kernels::gate_residual_(tokens, gate_msa, proj);                         // x += g * attn
  // MLP branch.
  kernels::adaln_layernorm_out(ln, tokens, shift_mlp, scale_mlp);
  auto hidden2d = hidden.view({B * N, hidden.size(2)});
  linear_into(lin, hidden2d, ln2d, blk.mlp->fc1, true);                    // gelu(fc1) [B, N, mlp]
  linear_into(lin, proj2d, hidden2d, blk.mlp->fc2, false);                 // [B, N, D]
  kernels::gate_residual_(tokens, gate_mlp, proj);                         // h += g * mlp
}

}  // namespace

BlockStackInference::BlockStackInference(torch::nn::ModuleList blocks, int64_t num_heads,
                                         LinearPrecision precision)
    : blocks_(std::move(blocks)), heads_(num_heads),
      precision_(kernels::resolve_precision(precision)), ws_(std::make_shared<Workspace>()) {
  if (blocks_->size() == 0) throw Error("BlockStackInference: no blocks");
  const auto& w = blocks_->ptr(0)->as<DiTBlockImpl>()->attn->qkv->weight;
  const bool cpu_f32 = w.device().is_cpu() && w.scalar_type() == torch::kFloat32;
  const bool pack = cpu_f32 && kernels::PackedLinear::available();
  if (!pack && precision_ == LinearPrecision::kFloat32) return;  // torch::linear as is
  torch::NoGradGuard no_grad;
  linears_ = std::make_shared<Linears>();
  linears_->packed = pack;
  for (auto& block : *blocks_) {
    auto& blk = *block->as<DiTBlockImpl>();
    for (auto* l : {blk.attn->qkv.get(), blk.attn->proj.get(), blk.mlp->fc1.get(), blk.mlp->fc2.get()}) {
      auto& layer = linears_->layers[l];
      if (pack) {
        const auto act = l == blk.mlp->fc1.get() ? kernels::LinearActivation::kGeluTanh
                                                 : kernels::LinearActivation::kNone;
        layer.packed.emplace(l->weight, l->bias, precision_, act);
      } else {
        layer.w_bf16 = l->weight.to(torch::kBFloat16), layer.b_bf16 = l->bias.to(torch::kBFloat16);
      }
    }
  }
}

int64_t BlockStackInference::allocations() const { return ws_->allocations; }

torch::Tensor BlockStackInference::run(const torch::Tensor& tokens_in, const torch::Tensor& c,
                                       const std::optional<torch::Tensor>& key_mask) {
  torch::NoGradGuard no_grad;
  auto& first = *blocks_->ptr(0)->as<DiTBlockImpl>();
  const int64_t D = first.attn->qkv->weight.size(1), mlp = first.mlp->fc1->weight.size(0);
  if (tokens_in.dim() != 3 || tokens_in.size(2) != D)
    throw Error(fmt::format("block stack inference: tokens must be [B, N, {}], got {}", D,
                            fmt::join(tokens_in.sizes(), "x")));
  std::lock_guard<std::mutex> lock(ws_->mutex);
  auto& w = *ws_;
  const bool bf16_hidden = linears_ && linears_->packed && precision_ == LinearPrecision::kBF16;
  w.ensure(tokens_in.size(0), tokens_in.size(1), D, mlp, tokens_in.options(), bf16_hidden);
  w.tokens.copy_(tokens_in);
  for (auto& block : *blocks_)
    block_inference(*block->as<DiTBlockImpl>(), linears_.get(), heads_, w, c, key_mask);
  return w.tokens;
}

DiTInference::DiTInference(DiT model, LinearPrecision precision)
    : model_(model), stack_(model->blocks, model->config().num_heads, precision) {}

torch::Tensor DiTInference::run_blocks(const torch::Tensor& tokens, const torch::Tensor& c,
                                       const std::optional<torch::Tensor>& key_mask) {
  torch::NoGradGuard no_grad;
  return model_->final_layer->forward(stack_.run(tokens, c, key_mask), c);  // [B, N, p*p*out], fresh
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
