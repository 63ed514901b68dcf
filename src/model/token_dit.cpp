// The DiT over token sets (see TokenDiTImpl in dit/model.h), the FlowInputs helpers, and the
// network files every domain reads and writes (load_flow_net / save_flow_net).
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/model.h>
#include <dit/safetensors.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join

#include <cmath>
#include <limits>

namespace dit {

namespace nn = torch::nn;

// ---- FlowInputs --------------------------------------------------------------------------------

namespace {
template <class F>
FlowInputs map_fields(const FlowInputs& in, F&& f) {
  FlowInputs out;
  for (auto [src, dst] : {std::pair{&in.labels, &out.labels}, std::pair{&in.features, &out.features},
                          std::pair{&in.mask, &out.mask}, std::pair{&in.context, &out.context},
                          std::pair{&in.context_mask, &out.context_mask},
                          std::pair{&in.cond, &out.cond}, std::pair{&in.rows, &out.rows}})
    if (src->defined()) *dst = f(*src);
  return out;
}
}  // namespace

FlowInputs FlowInputs::narrow(int64_t first, int64_t n) const {
  return map_fields(*this, [&](const torch::Tensor& t) { return t.narrow(0, first, n); });
}

FlowInputs FlowInputs::index_select(const torch::Tensor& index) const {
  return map_fields(*this, [&](const torch::Tensor& t) { return t.index_select(0, index); });
}

FlowInputs FlowInputs::repeat(int64_t times) const {
  return map_fields(*this, [&](const torch::Tensor& t) {
    std::vector<int64_t> reps(t.dim(), 1);
    reps[0] = times;
    return t.repeat(reps);
  });
}

FlowInputs FlowInputs::to(const torch::Device& device,
                          std::optional<torch::ScalarType> floating) const {
  return map_fields(*this, [&](const torch::Tensor& t) {
    return floating && t.is_floating_point() ? t.to(device, *floating) : t.to(device);
  });
}

FlowInputs FlowInputs::cat(const FlowInputs& a, const FlowInputs& b) {
  FlowInputs out;
  auto join = [](const torch::Tensor& x, const torch::Tensor& y, const char* name) {
    if (x.defined() != y.defined())
      throw Error(fmt::format("FlowInputs::cat: '{}' is defined on one side only", name));
    return x.defined() ? torch::cat({x, y}) : torch::Tensor();
  };
  out.labels = join(a.labels, b.labels, "labels");
  out.features = join(a.features, b.features, "features");
  out.mask = join(a.mask, b.mask, "mask");
  out.context = join(a.context, b.context, "context");
  out.context_mask = join(a.context_mask, b.context_mask, "context_mask");
  out.cond = join(a.cond, b.cond, "cond");
  out.rows = join(a.rows, b.rows, "rows");
  return out;
}

int64_t FlowInputs::batch_size() const {
  for (const auto* t : {&labels, &features, &mask, &context, &context_mask, &cond, &rows})
    if (t->defined()) return t->size(0);
  return 0;
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                            const torch::Tensor&)>
FlowNetImpl::inference() {
  auto self = std::static_pointer_cast<FlowNetImpl>(shared_from_this());
  return [self](const torch::Tensor& x, const torch::Tensor& t, const FlowInputs& in,
                const torch::Tensor& d) { return self->flow(x, t, in, d); };
}

// ---- TokenDiTConfig ------------------------------------------------------------------------------

void TokenDiTConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("token DiT config: " + what);
  };
  auto in_range = [](int64_t v, int64_t lo) { return v >= lo && v <= kMaxConfigDim; };
  require(in_range(state_dim, 1), fmt::format("state_dim must be in [1, {}], got {}", kMaxConfigDim, state_dim));
  require(in_range(token_features, 0), fmt::format("token_features must be in [0, {}], got {}", kMaxConfigDim, token_features));
  require(in_range(context_features, 0), fmt::format("context_features must be in [0, {}], got {}", kMaxConfigDim, context_features));
  require(in_range(cond_features, 0), fmt::format("cond_features must be in [0, {}], got {}", kMaxConfigDim, cond_features));
  require(in_range(num_classes, 0), fmt::format("num_classes must be in [0, {}], got {}", kMaxConfigDim, num_classes));
  require(in_range(hidden_size, 1), fmt::format("hidden_size must be in [1, {}], got {}", kMaxConfigDim, hidden_size));
  require(depth >= 1 && depth <= kMaxDepth, fmt::format("depth must be in [1, {}], got {}", kMaxDepth, depth));
  require(periodic_frequencies >= 0 && periodic_frequencies <= 64,
          fmt::format("periodic_frequencies must be in [0, 64], got {}", periodic_frequencies));
  require(chain_neighbours >= 0 && chain_neighbours <= 32,
          fmt::format("chain_neighbours must be in [0, 32], got {}", chain_neighbours));
  require(periodic_pairs >= 0 && periodic_pairs <= 64,
          fmt::format("periodic_pairs must be in [0, 64], got {}", periodic_pairs));
  require(pair_channels >= 1 && pair_channels <= 64,
          fmt::format("pair_channels must be in [1, 64], got {}", pair_channels));
  require(global_tokens >= 0 && global_tokens <= kMaxConfigDim,
          fmt::format("global_tokens must be in [0, {}], got {}", kMaxConfigDim, global_tokens));
  require(periodic_pairs == 0 || token_features > 0,
          fmt::format("periodic_pairs {} needs token features (pair_embedder reads them)", periodic_pairs));
  require(num_heads >= 1 && hidden_size % num_heads == 0,
          fmt::format("hidden_size {} must be a multiple of num_heads {}", hidden_size, num_heads));
  require(std::isfinite(mlp_ratio) && mlp_ratio > 0 && hidden_size * mlp_ratio >= 1 &&
              hidden_size * mlp_ratio <= kMaxConfigDim,
          fmt::format("mlp_ratio {} gives no valid MLP width", mlp_ratio));
}

std::string TokenDiTConfig::describe() const {
  return fmt::format(
      "token DiT state {}, features {}, context {}, cond {}, classes {}, hidden {}, depth {}, "
      "heads {}, mlp {}{}{}{}{}",
      state_dim, token_features, context_features, cond_features, num_classes, hidden_size, depth,
      num_heads, static_cast<int64_t>(hidden_size * mlp_ratio),
      step_conditioning ? ", step-conditioned" : "",
      periodic_frequencies > 0 ? fmt::format(", periodic state ({} frequencies)", periodic_frequencies) : "",
      chain_neighbours > 0 ? fmt::format(", chain neighbours +-{}", chain_neighbours) : "",
      periodic_pairs > 0 ? fmt::format(", periodic pairs ({} frequencies x {} channels, {} global tokens)",
                                       periodic_pairs, pair_channels, global_tokens)
                         : "");
}

Metadata TokenDiTConfig::to_metadata() const {
  return {{"dit.kind", "token"},
          {"token.state_dim", std::to_string(state_dim)},
          {"token.token_features", std::to_string(token_features)},
          {"token.context_features", std::to_string(context_features)},
          {"token.cond_features", std::to_string(cond_features)},
          {"token.num_classes", std::to_string(num_classes)},
          {"token.hidden_size", std::to_string(hidden_size)},
          {"token.depth", std::to_string(depth)},
          {"token.num_heads", std::to_string(num_heads)},
          {"token.mlp_ratio", fmt::format("{}", mlp_ratio)},
          {"token.step_conditioning", step_conditioning ? "1" : "0"},
          {"token.periodic_frequencies", std::to_string(periodic_frequencies)},
          {"token.chain_neighbours", std::to_string(chain_neighbours)},
          {"token.periodic_pairs", std::to_string(periodic_pairs)},
          {"token.pair_channels", std::to_string(pair_channels)},
          {"token.global_tokens", std::to_string(global_tokens)}};
}

TokenDiTConfig TokenDiTConfig::from_metadata(const Metadata& m, const std::string& source) {
  auto text = [&](const std::string& key) -> const std::string& {
    auto it = m.find(key);
    if (it == m.end())
      throw Error(fmt::format("{}: metadata '{}' missing (not a token DiT file)", source, key));
    return it->second;
  };
  auto integer = [&](const std::string& key) -> int64_t {
    const auto& v = text(key);
    try {
      size_t used = 0;
      const int64_t x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw Error(fmt::format("{}: metadata '{}' = '{}' is not an integer", source, key, v));
  };
  TokenDiTConfig c;
  c.state_dim = integer("token.state_dim");
  c.token_features = integer("token.token_features");
  c.context_features = integer("token.context_features");
  c.cond_features = integer("token.cond_features");
  c.num_classes = integer("token.num_classes");
  c.hidden_size = integer("token.hidden_size");
  c.depth = integer("token.depth");
  c.num_heads = integer("token.num_heads");
  const auto& ratio = text("token.mlp_ratio");
  try {
    c.mlp_ratio = std::stod(ratio);
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: metadata 'token.mlp_ratio' = '{}' is not a number", source, ratio));
  }
  c.step_conditioning = text("token.step_conditioning") == "1";
  // Files written before periodic states existed have none.
  if (m.count("token.periodic_frequencies")) c.periodic_frequencies = integer("token.periodic_frequencies");
  if (m.count("token.chain_neighbours")) c.chain_neighbours = integer("token.chain_neighbours");
  // Files written before periodic pairs existed have none.
  if (m.count("token.periodic_pairs")) c.periodic_pairs = integer("token.periodic_pairs");
  if (m.count("token.pair_channels")) c.pair_channels = integer("token.pair_channels");
  if (m.count("token.global_tokens")) c.global_tokens = integer("token.global_tokens");
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
  return c;
}

// ---- TokenDiT --------------------------------------------------------------------------------------

namespace {
// For offsets k = -K..-1, 1..K: [x[i+k] - x[i], |x[i+k] - x[i]|, 1] where token i+k exists (in
// 0..N-1 and, with a mask, unmasked at both ends), zeros where it does not. [B, N, 2K (C + 2)].
torch::Tensor chain_neighbour_features(const torch::Tensor& x, const torch::Tensor& mask, int64_t K) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  auto present = mask.defined() ? mask.to(x.dtype()) : torch::ones({B, N}, x.options());
  std::vector<torch::Tensor> parts;
  parts.reserve(static_cast<size_t>(2 * K));
  for (int64_t k = -K; k <= K; ++k) {
    if (k == 0) continue;
    const int64_t n = N - std::abs(k);
    if (n <= 0) {
      parts.push_back(torch::zeros({B, N, C + 2}, x.options()));
      continue;
    }
    const int64_t self = k > 0 ? 0 : -k, other = k > 0 ? k : 0;  // rows i and i + k
    auto exists = (present.narrow(1, self, n) * present.narrow(1, other, n)).unsqueeze(-1);
    auto delta = (x.narrow(1, other, n) - x.narrow(1, self, n)) * exists;
    auto length = torch::sqrt(delta.pow(2).sum(-1, true) + 1e-12) * exists;
    // rows self .. self + n - 1 of N: pad the others with zeros.
    parts.push_back(torch::constant_pad_nd(torch::cat({delta, length, exists}, -1), {0, 0, self, N - n - self}));
  }
  return torch::cat(parts, -1);
}

// Periodic pair inputs of TokenDiTConfig::periodic_pairs: for every token i >= G, the mean over
// the other real tokens j >= G of [sin, cos](2 pi k (x_j - x_i)) (k = 1..K, every state number)
// times e_j [P]; zeros for the global tokens and for a token without partners.
// [B, N, 2 C K P].
torch::Tensor periodic_pair_features(const torch::Tensor& x, const torch::Tensor& mask,
                                     const torch::Tensor& e, int64_t K, int64_t G) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), P = e.size(2);
  const int64_t A = N - G;
  auto out = torch::zeros({B, N, 2 * C * K * P}, x.options());
  if (A < 1) return out;
  auto f = x.narrow(1, G, A);                                        // [B, A, C]
  auto k = torch::arange(1, K + 1, x.options()) * (2 * M_PI);        // [K]
  auto angle = ((f.unsqueeze(1) - f.unsqueeze(2)).unsqueeze(-1) * k).flatten(-2);  // [B, i, j, C K]
  auto pf = torch::cat({torch::sin(angle), torch::cos(angle)}, -1);  // [B, i, j, 2 C K]
  auto present = mask.defined() ? mask.narrow(1, G, A).to(x.dtype()) : torch::ones({B, A}, x.options());
  auto w = present.unsqueeze(1) * (1 - torch::eye(A, x.options()));  // [B, i, j]: j real, j != i
  auto count = w.sum(-1, true).clamp_min(1);                          // [B, i, 1]
  auto agg = torch::einsum("bija,bij,bjp->biap", {pf, w, e.narrow(1, G, A)}) / count.unsqueeze(-1);  // [B, i, 2CK, P]
  out.narrow(1, G, A).copy_(agg.flatten(-2) * present.unsqueeze(-1));
  return out;
}
}  // namespace

TokenDiTImpl::TokenDiTImpl(const TokenDiTConfig& config) : config_(config) {
  config_.validate();
  const auto& c = config_;
  const int64_t D = c.hidden_size;
  x_embedder = register_module(
      "x_embedder", nn::Linear(c.token_features + c.state_dim * (1 + 2 * c.periodic_frequencies) +
                                   2 * c.chain_neighbours * (c.state_dim + 2) +
                                   2 * c.state_dim * c.periodic_pairs * c.pair_channels, D));
  if (c.periodic_pairs > 0)
    pair_embedder = register_module("pair_embedder", nn::Linear(c.token_features, c.pair_channels));
  if (c.context_features > 0)
    context_embedder = register_module("context_embedder", nn::Linear(c.context_features, D));
  t_embedder = register_module("t_embedder", TimestepEmbedder(D));
  if (c.step_conditioning) dt_embedder = register_module("dt_embedder", TimestepEmbedder(D));
  if (c.num_classes > 0) y_embedder = register_module("y_embedder", LabelEmbedder(c.num_classes, D));
  if (c.cond_features > 0) cond_embedder = register_module("cond_embedder", nn::Linear(c.cond_features, D));
  blocks = register_module("blocks", nn::ModuleList());
  const auto mlp_hidden = static_cast<int64_t>(D * c.mlp_ratio);
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(DiTBlock(D, c.num_heads, mlp_hidden));
  final_layer = register_module("final_layer", FinalLayer(D, c.state_dim));
  initialize_dit_weights(*this, t_embedder, dt_embedder, y_embedder, blocks, final_layer);
}

std::shared_ptr<FlowNetImpl> TokenDiTImpl::fresh() const {
  return std::make_shared<TokenDiTImpl>(config_);
}

torch::Tensor TokenDiTImpl::flow(const torch::Tensor& x, const torch::Tensor& t,
                                 const FlowInputs& in, const torch::Tensor& d) {
  return flow_with(x, t, in, d, nullptr);
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                            const torch::Tensor&)>
TokenDiTImpl::inference() {
  auto self = std::static_pointer_cast<TokenDiTImpl>(shared_from_this());
  auto stack = std::make_shared<BlockStackInference>(
      blocks, config_.num_heads,
      inference_precision ? *inference_precision : default_linear_precision());
  return [self, stack](const torch::Tensor& x, const torch::Tensor& t, const FlowInputs& in,
                       const torch::Tensor& d) {
    return self->flow_with(x, t, in, d, torch::GradMode::is_enabled() ? nullptr : stack.get());
  };
}

torch::Tensor TokenDiTImpl::flow_with(const torch::Tensor& x, const torch::Tensor& t,
                                      const FlowInputs& in, const torch::Tensor& d,
                                      BlockStackInference* stack) {
  const auto& c = config_;
  if (x.dim() != 3 || x.size(2) != c.state_dim)
    throw Error(fmt::format("token DiT: x must be [B, N, {}], got {} dims", c.state_dim, x.dim()));
  const int64_t B = x.size(0), N = x.size(1);
  auto expect = [&](const torch::Tensor& v, const char* name, std::vector<int64_t> shape) {
    if (!v.defined()) throw Error(fmt::format("token DiT: inputs.{} is required by this model", name));
    if (v.sizes() != torch::IntArrayRef(shape))
      throw Error(fmt::format("token DiT: inputs.{} must be [{}], got [{}]", name,
                              fmt::join(shape, ", "), fmt::join(v.sizes(), ", ")));
  };
  if (t.dim() != 1 || t.size(0) != B)
    throw Error(fmt::format("token DiT: t must be [B={}]", B));
  if (in.mask.defined()) expect(in.mask, "mask", {B, N});
  if (c.token_features > 0) expect(in.features, "features", {B, N, c.token_features});
  torch::Tensor state = x;
  if (c.periodic_frequencies > 0) {
    // [x, sin(2 pi k x), cos(2 pi k x) for k = 1..K]: continuous across the circle's wrap.
    auto k = torch::arange(1, c.periodic_frequencies + 1, x.options()) * (2 * M_PI);  // [K]
    auto angle = (x.unsqueeze(-1) * k).flatten(-2);                                  // [B, N, Cx K]
    state = torch::cat({x, torch::sin(angle), torch::cos(angle)}, -1);
  }
  if (c.chain_neighbours > 0)
    state = torch::cat({state, chain_neighbour_features(x, in.mask, c.chain_neighbours)}, -1);
  if (c.periodic_pairs > 0) {  // token_features > 0 (validate)
    // Tokens from global_tokens on see differences only: their absolute state is zeroed.
    auto global = (torch::arange(N, x.options().dtype(torch::kLong)) < c.global_tokens).to(x.dtype());
    state = state * global.view({1, N, 1});
    auto e = pair_embedder->forward(in.features.to(x.dtype()));  // [B, N, P]
    state = torch::cat({state, periodic_pair_features(x, in.mask, e, c.periodic_pairs, c.global_tokens)}, -1);
  }
  if (c.token_features > 0)
    state = torch::cat({in.features.to(x.dtype()), state}, -1);  // [B, N, F + Cx (1 + 2K)]
  auto tokens = x_embedder->forward(state);  // [B, N, D]
  auto mask = in.mask.defined() ? in.mask.to(torch::kBool) : torch::ones({B, N}, x.options().dtype(torch::kBool));
  if (c.context_features > 0) {
    if (!in.context.defined()) throw Error("token DiT: inputs.context is required by this model");
    const int64_t M = in.context.size(0) == B && in.context.dim() == 3 ? in.context.size(1) : -1;
    expect(in.context, "context", {B, M, c.context_features});
    auto cm = in.context_mask.defined() ? in.context_mask.to(torch::kBool)
                                        : torch::ones({B, M}, mask.options());
    tokens = torch::cat({tokens, context_embedder->forward(in.context.to(x.dtype()))}, 1);  // [B, N+M, D]
    mask = torch::cat({mask, cm}, 1);                                                      // [B, N+M]
  }
  auto cond = t_embedder->forward(t * kTimestepScale);  // [B, D]
  if (y_embedder) {
    expect(in.labels, "labels", {B});
    cond = cond + y_embedder->forward(in.labels);
  }
  if (cond_embedder) {
    expect(in.cond, "cond", {B, c.cond_features});
    cond = cond + cond_embedder->forward(in.cond.to(x.dtype()));
  }
  if (dt_embedder) {
    cond = cond + dt_embedder->forward(d.defined() ? d * kTimestepScale : torch::zeros_like(t));
  } else if (d.defined()) {
    throw Error("token DiT: step sizes given to a model without step conditioning");
  }
  const bool padded = !mask.all().item<bool>();
  const auto key_mask = padded ? std::optional(mask) : std::nullopt;
  if (stack)
    tokens = stack->run(tokens, cond, key_mask);  // a workspace buffer, read once below
  else
    for (auto& block : *blocks) tokens = block->as<DiTBlockImpl>()->forward(tokens, cond, key_mask);
  auto out = final_layer->forward(tokens.narrow(1, 0, N), cond);  // [B, N, Cx]
  if (in.mask.defined()) out = out * in.mask.unsqueeze(-1).to(out.dtype());
  return out;
}

// ---- files ---------------------------------------------------------------------------------------

std::string initialize_from(FlowNetImpl& net, const std::string& path) {
  auto source = load_flow_net(path);
  const auto theirs = source->named_parameters(true);
  torch::NoGradGuard no_grad;
  int copied = 0, widened = 0;
  for (auto& item : net.named_parameters(true)) {
    const auto* from = theirs.find(item.key());
    if (!from)
      throw Error(fmt::format("{}: no parameter '{}' to start this network from", path, item.key()));
    auto& to = item.value();
    if (from->sizes() == to.sizes()) {
      to.copy_(*from);
      ++copied;
    } else if (to.dim() == 2 && from->dim() == 2 && from->size(0) == to.size(0) &&
               from->size(1) < to.size(1)) {
      to.zero_();
      to.narrow(1, 0, from->size(1)).copy_(*from);
      ++widened;
    } else {
      throw Error(fmt::format("{}: parameter '{}' is [{}], this network's is [{}]", path, item.key(),
                              fmt::join(from->sizes(), ", "), fmt::join(to.sizes(), ", ")));
    }
  }
  return fmt::format("started from {}: {} parameters copied, {} widened (new input columns zero)",
                     path, copied, widened);
}

FlowNet load_flow_net(const std::string& path) {
  SafeTensorsFile file(path);
  const auto meta = file.metadata();
  auto kind = meta.find("dit.kind");
  if (kind == meta.end() || kind->second != "token") return load_dit(path).ptr();
  const std::string prefix = weights_prefix(file);
  auto net = std::make_shared<TokenDiTImpl>(TokenDiTConfig::from_metadata(meta, path));
  TensorMap weights;
  for (const auto& name : file.names())
    if (name.rfind(prefix, 0) == 0) weights[name.substr(prefix.size())] = file.view(name);
  load_state_dict(*net, weights, path);
  net->eval();
  return net;
}

void save_flow_net(const std::string& path, const FlowNetImpl& net, Metadata extra) {
  auto meta = net.metadata();
  for (auto& [k, v] : extra) meta[k] = v;
  TensorMap tensors;
  for (auto& [k, v] : state_dict(net)) tensors[k] = v.detach().to(torch::kFloat32);
  save_safetensors(path, tensors, meta);
}

}  // namespace dit
