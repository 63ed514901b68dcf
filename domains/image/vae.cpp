// The Stable Diffusion VAE (diffusers AutoencoderKL) for inference. Written from diffusers'
// source (models/autoencoders/vae.py Encoder/Decoder, autoencoder_kl.py, unets/unet_2d_blocks.py
// DownEncoderBlock2D/UpDecoderBlock2D/UNetMidBlock2D, resnet.py ResnetBlock2D/Downsample2D/
// Upsample2D, attention_processor.py Attention/AttnProcessor). Each block below is a plain struct
// of tensors built from the checkpoint under its diffusers prefix; the forward functions use
// torch ops (conv2d, group_norm) and kernels::attention for the mid-block attention.
// PyTorch parity: tests/reference/make_vae_fixtures.py, tests/domains/vae_test.cpp.
#include <dit/error.h>
#include <dit/kernels.h>
#include <dit/safetensors.h>
#include <dit/vae.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <cmath>
#include <set>
#include <utility>

namespace dit {

namespace {

constexpr double kNormEps = 1e-6;    // every GroupNorm of the VAE
constexpr int64_t kMaxLevels = 12;   // a sanity bound on block_out_channels
constexpr int64_t kMaxChannels = 1 << 16;
// Convolution weights and activations are kept channels-last (NHWC): oneDNN's and cuDNN's
// preferred layout, ~10% faster than NCHW for the SD decoder on a 2-core x86 CPU (1.9 vs 2.15 s
// for [1, 4, 32, 32]; PyTorch eager shows the same gain). Results are returned contiguous.
constexpr auto kLayout = torch::MemoryFormat::ChannelsLast;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string shape_str(c10::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// ---- key names -------------------------------------------------------------------------------

// Older diffusers (the sd-vae-ft-* files on the Hub) name the mid-block attention's projections
// query/key/value/proj_attn; current diffusers to_q/to_k/to_v/to_out.0.
const std::pair<const char*, const char*> kOldAttentionNames[] = {
    {"query.", "to_q."}, {"key.", "to_k."}, {"value.", "to_v."}, {"proj_attn.", "to_out.0."}};
const char* const kProjections[] = {"to_q.weight", "to_k.weight", "to_v.weight",
                                    "to_out.0.weight"};

// The file's tensors under the canonical names, with the original name of each (for messages),
// and 1x1-conv attention projections [C, C, 1, 1] viewed as linear weights [C, C].
struct Canonical {
  TensorMap tensors;
  std::map<std::string, std::string> original;  // canonical -> name in the file
};

Canonical canonicalize(const TensorMap& weights, const std::string& source) {
  Canonical c;
  for (const auto& [name, tensor] : weights) {
    std::string key = name;
    torch::Tensor t = tensor;
    const auto at = key.find(".attentions.");
    const auto dot = at == std::string::npos ? at : key.find('.', at + 12);
    if (dot != std::string::npos) {  // <prefix>.attentions.<n>.<rest>
      std::string rest = key.substr(dot + 1);
      for (const auto& [old_name, new_name] : kOldAttentionNames)
        if (starts_with(rest, old_name)) {
          rest = new_name + rest.substr(std::string(old_name).size());
          break;
        }
      key = key.substr(0, dot + 1) + rest;
      for (const char* proj : kProjections)
        if (rest == proj && t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1)
          t = t.reshape({t.size(0), t.size(1)});  // 1x1 conv [C, C, 1, 1] -> linear [C, C]
    }
    if (c.tensors.count(key))
      throw Error(fmt::format("{}: tensors '{}' and '{}' are the same parameter under its old "
                              "and new name; keep one",
                              source, c.original[key], name));
    c.tensors[key] = t;
    c.original[key] = name;
  }
  return c;
}

bool has_prefix(const TensorMap& w, const std::string& prefix) {
  auto it = w.lower_bound(prefix);
  return it != w.end() && starts_with(it->first, prefix);
}

// The indices i of keys "<prefix><i>.*", which must be 0 .. n-1.
int64_t count_indexed(const TensorMap& w, const std::string& prefix, const std::string& source) {
  std::set<int64_t> seen;
  for (auto it = w.lower_bound(prefix); it != w.end() && starts_with(it->first, prefix); ++it) {
    const std::string rest = it->first.substr(prefix.size());
    const auto dot = rest.find('.');
    const std::string idx = rest.substr(0, dot);
    if (idx.empty() || idx.size() > 4 || idx.find_first_not_of("0123456789") != std::string::npos)
      throw Error(fmt::format("{}: unexpected tensor '{}' (expected {}<index>.*)", source,
                              it->first, prefix));
    seen.insert(std::stoll(idx));
  }
  const auto n = static_cast<int64_t>(seen.size());
  for (int64_t i = 0; i < n; ++i)
    if (!seen.count(i))
      throw Error(fmt::format("{}: tensors '{}{}.*' missing (found indices up to {})", source,
                              prefix, i, *seen.rbegin()));
  return n;
}

std::vector<int64_t> shape_of(const Canonical& c, const std::string& key,
                              const std::string& source, int64_t dims) {
  auto it = c.tensors.find(key);
  if (it == c.tensors.end())
    throw Error(fmt::format("{}: tensor '{}' missing: not a complete diffusers AutoencoderKL",
                            source, key));
  if (it->second.dim() != dims)
    throw Error(fmt::format("{}: tensor '{}' has shape {}, expected {} dimensions", source,
                            c.original.at(key), shape_str(it->second.sizes()), dims));
  for (int64_t s : it->second.sizes())
    if (s < 1 || s > kMaxChannels)
      throw Error(fmt::format("{}: tensor '{}' has shape {}, expected sizes in 1..{}", source,
                              c.original.at(key), shape_str(it->second.sizes()), kMaxChannels));
  return it->second.sizes().vec();
}

int64_t metadata_int(const Metadata& m, const std::string& field, int64_t fallback,
                     const std::string& source) {
  auto it = m.find(field);
  if (it == m.end()) return fallback;
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size())
    throw Error(fmt::format("{}: metadata '{}' = '{}', expected an integer", source, field,
                            it->second));
  return v;
}

double metadata_double(const Metadata& m, const std::string& field, double fallback,
                       const std::string& source) {
  auto it = m.find(field);
  if (it == m.end()) return fallback;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size())
    throw Error(fmt::format("{}: metadata '{}' = '{}', expected a number", source, field,
                            it->second));
  return v;
}

bool has_encoder_keys(const TensorMap& w) {
  return has_prefix(w, "encoder.") || has_prefix(w, "quant_conv.");
}

VaeConfig infer_canonical(const Canonical& c, const Metadata& metadata, const std::string& source) {
  const TensorMap& w = c.tensors;
  if (!w.count("decoder.conv_in.weight")) {
    if (has_prefix(w, "decoder.up.") || has_prefix(w, "first_stage_model."))
      throw Error(fmt::format(
          "{}: tensor 'decoder.conv_in.weight' missing: this looks like an original "
          "CompVis/ldm VAE checkpoint (decoder.up.*, first_stage_model.*); convert it to "
          "diffusers' AutoencoderKL key names (decoder.up_blocks.*)",
          source));
    throw Error(fmt::format("{}: tensor 'decoder.conv_in.weight' missing: not a diffusers "
                            "AutoencoderKL file (expected decoder.*, post_quant_conv.* and "
                            "optionally encoder.*, quant_conv.* tensors)",
                            source));
  }
  VaeConfig cfg;
  const int64_t levels = count_indexed(w, "decoder.up_blocks.", source);
  if (levels < 1 || levels > kMaxLevels)
    throw Error(fmt::format("{}: {} decoder.up_blocks, expected 1..{}", source, levels,
                            kMaxLevels));
  cfg.block_out_channels.assign(levels, 0);
  for (int64_t i = 0; i < levels; ++i)
    cfg.block_out_channels[levels - 1 - i] =
        shape_of(c, fmt::format("decoder.up_blocks.{}.resnets.0.conv1.weight", i), source, 4)[0];
  cfg.layers_per_block = count_indexed(w, "decoder.up_blocks.0.resnets.", source) - 1;
  cfg.latent_channels = shape_of(c, "decoder.conv_in.weight", source, 4)[1];
  cfg.out_channels = shape_of(c, "decoder.conv_out.weight", source, 4)[0];
  cfg.in_channels = has_encoder_keys(w) ? shape_of(c, "encoder.conv_in.weight", source, 4)[1]
                                        : cfg.out_channels;
  cfg.norm_num_groups = metadata_int(metadata, "vae.norm_num_groups", 32, source);
  cfg.scaling_factor = metadata_double(metadata, "vae.scaling_factor", 0.18215, source);
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
  return cfg;
}

// ---- blocks ----------------------------------------------------------------------------------

struct Conv {
  torch::Tensor w, b;  // w: [Cout, Cin, k, k], b: [Cout]
  int64_t stride = 1, padding = 0;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return torch::conv2d(x, w, b, stride, padding);
  }
};

struct Norm {
  torch::Tensor w, b;  // [C]
  int64_t groups = 32;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return torch::group_norm(x, groups, w, b, kNormEps);
  }
  torch::Tensor silu(const torch::Tensor& x) const {  // silu(norm(x)), in place on the norm
    auto h = (*this)(x);
    torch::silu_(h);
    return h;
  }
};

struct Resnet {  // ResnetBlock2D without time embedding, output_scale_factor 1
  Norm norm1, norm2;
  Conv conv1, conv2;
  std::optional<Conv> shortcut;  // 1x1 conv when channels change
};

struct Attention {  // one head over all C channels, residual connection
  Norm norm;
  torch::Tensor w_qkv, b_qkv;  // [3C, C], [3C]: to_q, to_k, to_v stacked
  torch::Tensor w_out, b_out;  // [C, C], [C]: to_out.0
};

struct MidBlock {  // resnets.0 -> attentions.0 -> resnets.1
  Resnet resnet0, resnet1;
  Attention attention;
};

struct Level {  // DownEncoderBlock2D or UpDecoderBlock2D
  std::vector<Resnet> resnets;
  std::optional<Conv> resample;  // downsamplers.0.conv (stride 2) or upsamplers.0.conv
};

struct Coder {  // Encoder or Decoder
  Conv conv_in, conv_out;
  std::vector<Level> levels;
  MidBlock mid;
  Norm norm_out;
};

// Takes tensors by canonical key, checking each shape, and remembers which were used.
class Loader {
 public:
  Loader(const Canonical& c, const VaeConfig& cfg, const std::string& source,
         const VaeLoadOptions& options)
      : c_(c), cfg_(cfg), source_(source), options_(options) {}

  torch::Tensor take(const std::string& key, const std::vector<int64_t>& shape) {
    auto it = c_.tensors.find(key);
    if (it == c_.tensors.end())
      throw Error(fmt::format("{}: tensor '{}' missing (expected shape {} for {})", source_, key,
                              shape_str(shape), cfg_.describe()));
    const auto& t = it->second;
    if (t.sizes() != c10::IntArrayRef(shape))
      throw Error(fmt::format("{}: tensor '{}' has shape {}, expected {} (for {})", source_,
                              c_.original.at(key), shape_str(t.sizes()), shape_str(shape),
                              cfg_.describe()));
    if (!t.is_floating_point())
      throw Error(fmt::format("{}: tensor '{}' has dtype {}, expected a floating-point type",
                              source_, c_.original.at(key), c10::toString(t.scalar_type())));
    used_.insert(key);
    auto out = t.to(options_.device, options_.dtype);
    return out.dim() == 4 ? out.contiguous(kLayout) : out.contiguous();
  }

  Conv conv(const std::string& p, int64_t cin, int64_t cout, int64_t k, int64_t stride,
            int64_t padding) {
    return {take(p + ".weight", {cout, cin, k, k}), take(p + ".bias", {cout}), stride, padding};
  }
  Norm norm(const std::string& p, int64_t ch) {
    return {take(p + ".weight", {ch}), take(p + ".bias", {ch}), cfg_.norm_num_groups};
  }
  Resnet resnet(const std::string& p, int64_t cin, int64_t cout) {
    Resnet r{norm(p + ".norm1", cin), norm(p + ".norm2", cout),
             conv(p + ".conv1", cin, cout, 3, 1, 1), conv(p + ".conv2", cout, cout, 3, 1, 1),
             std::nullopt};
    if (cin != cout) r.shortcut = conv(p + ".conv_shortcut", cin, cout, 1, 1, 0);
    return r;
  }
  Attention attention(const std::string& p, int64_t ch) {
    Attention a;
    a.norm = norm(p + ".group_norm", ch);
    std::vector<torch::Tensor> w, b;
    for (const char* name : {".to_q", ".to_k", ".to_v"}) {
      w.push_back(take(p + name + ".weight", {ch, ch}));
      b.push_back(take(p + name + ".bias", {ch}));
    }
    a.w_qkv = torch::cat(w);  // [3C, C]
    a.b_qkv = torch::cat(b);  // [3C]
    a.w_out = take(p + ".to_out.0.weight", {ch, ch});
    a.b_out = take(p + ".to_out.0.bias", {ch});
    return a;
  }
  MidBlock mid(const std::string& p, int64_t ch) {
    return {resnet(p + ".resnets.0", ch, ch), resnet(p + ".resnets.1", ch, ch),
            attention(p + ".attentions.0", ch)};
  }

  Coder encoder() {
    const auto& bo = cfg_.block_out_channels;
    const auto n = static_cast<int64_t>(bo.size());
    Coder e;
    e.conv_in = conv("encoder.conv_in", cfg_.in_channels, bo[0], 3, 1, 1);
    for (int64_t i = 0; i < n; ++i) {
      const std::string p = fmt::format("encoder.down_blocks.{}", i);
      Level level;
      for (int64_t j = 0; j < cfg_.layers_per_block; ++j)
        level.resnets.push_back(resnet(fmt::format("{}.resnets.{}", p, j),
                                       j == 0 ? bo[std::max<int64_t>(i - 1, 0)] : bo[i], bo[i]));
      // Downsample2D(padding=0): the input is padded (0, 1, 0, 1) in forward.
      if (i + 1 < n) level.resample = conv(p + ".downsamplers.0.conv", bo[i], bo[i], 3, 2, 0);
      e.levels.push_back(std::move(level));
    }
    e.mid = mid("encoder.mid_block", bo.back());
    e.norm_out = norm("encoder.conv_norm_out", bo.back());
    e.conv_out = conv("encoder.conv_out", bo.back(), 2 * cfg_.latent_channels, 3, 1, 1);
    return e;
  }

  Coder decoder() {
    const std::vector<int64_t> rev(cfg_.block_out_channels.rbegin(),
                                   cfg_.block_out_channels.rend());
    const auto n = static_cast<int64_t>(rev.size());
    Coder d;
    d.conv_in = conv("decoder.conv_in", cfg_.latent_channels, rev[0], 3, 1, 1);
    d.mid = mid("decoder.mid_block", rev[0]);
    for (int64_t i = 0; i < n; ++i) {
      const std::string p = fmt::format("decoder.up_blocks.{}", i);
      Level level;
      for (int64_t j = 0; j <= cfg_.layers_per_block; ++j)
        level.resnets.push_back(resnet(fmt::format("{}.resnets.{}", p, j),
                                       j == 0 ? rev[std::max<int64_t>(i - 1, 0)] : rev[i],
                                       rev[i]));
      if (i + 1 < n) level.resample = conv(p + ".upsamplers.0.conv", rev[i], rev[i], 3, 1, 1);
      d.levels.push_back(std::move(level));
    }
    d.norm_out = norm("decoder.conv_norm_out", rev.back());
    d.conv_out = conv("decoder.conv_out", rev.back(), cfg_.out_channels, 3, 1, 1);
    return d;
  }

  // Every tensor of the file must have been taken.
  void check_all_used() const {
    std::vector<std::string> extra;
    for (const auto& [key, t] : c_.tensors)
      if (!used_.count(key)) extra.push_back(c_.original.at(key));
    if (!extra.empty())
      throw Error(fmt::format("{}: unexpected tensor '{}'{} (not part of {})", source_, extra[0],
                              extra.size() > 1 ? fmt::format(" and {} more", extra.size() - 1)
                                               : std::string(),
                              cfg_.describe()));
  }

 private:
  const Canonical& c_;
  const VaeConfig& cfg_;
  const std::string& source_;
  const VaeLoadOptions& options_;
  std::set<std::string> used_;
};

// ---- forward ---------------------------------------------------------------------------------

torch::Tensor resnet_forward(const Resnet& r, const torch::Tensor& x) {
  // x: [B, Cin, H, W]
  auto h = r.conv1(r.norm1.silu(x));  // h: [B, Cout, H, W]
  h = r.conv2(r.norm2.silu(h));       // h: [B, Cout, H, W]
  return h.add_(r.shortcut ? (*r.shortcut)(x) : x);
}

torch::Tensor attention_forward(const Attention& a, const torch::Tensor& x) {
  // x: [B, C, H, W]
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto h = a.norm(x).flatten(2).transpose(1, 2).contiguous();  // h: [B, N, C], N = H * W
  auto qkv = torch::linear(h, a.w_qkv, a.b_qkv);               // qkv: [B, N, 3C]
  auto q = qkv.narrow(2, 0, C).unsqueeze(1);                   // q: [B, 1, N, C]
  auto k = qkv.narrow(2, C, C).unsqueeze(1);                   // k: [B, 1, N, C]
  auto v = qkv.narrow(2, 2 * C, C).unsqueeze(1);               // v: [B, 1, N, C]
  auto o = kernels::attention(q, k, v).squeeze(1);             // o: [B, N, C], scale C^-1/2
  o = torch::linear(o, a.w_out, a.b_out);                      // o: [B, N, C]
  return o.transpose(1, 2).reshape({B, C, H, W}).add_(x);      // [B, C, H, W]
}

torch::Tensor mid_forward(const MidBlock& m, torch::Tensor x) {
  x = resnet_forward(m.resnet0, x);       // x: [B, C, h, w]
  x = attention_forward(m.attention, x);  // x: [B, C, h, w]
  return resnet_forward(m.resnet1, x);    // x: [B, C, h, w]
}

torch::Tensor encoder_forward(const Coder& e, const torch::Tensor& images) {
  auto x = e.conv_in(images);  // x: [B, C0, H, W]
  for (const auto& level : e.levels) {
    for (const auto& r : level.resnets) x = resnet_forward(r, x);  // x: [B, Ci, H', W']
    if (level.resample)
      x = (*level.resample)(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));  // [B, Ci, H'/2, W'/2]
  }
  x = mid_forward(e.mid, x);                       // x: [B, Clast, h, w]
  return e.conv_out(e.norm_out.silu(x));  // [B, 2 * latent, h, w]
}

torch::Tensor decoder_forward(const Coder& d, const torch::Tensor& z) {
  auto x = d.conv_in(z);      // x: [B, Clast, h, w]
  x = mid_forward(d.mid, x);  // x: [B, Clast, h, w]
  for (const auto& level : d.levels) {
    for (const auto& r : level.resnets) x = resnet_forward(r, x);  // x: [B, Ci, h', w']
    if (level.resample) {
      x = torch::nn::functional::interpolate(
          x, torch::nn::functional::InterpolateFuncOptions()
                 .scale_factor(std::vector<double>{2.0, 2.0})
                 .mode(torch::kNearest));  // x: [B, Ci, 2h', 2w']
      x = (*level.resample)(x);            // x: [B, Ci, 2h', 2w']
    }
  }
  return d.conv_out(d.norm_out.silu(x));  // [B, out_channels, H, W]
}

}  // namespace

// ---- config ----------------------------------------------------------------------------------

int64_t VaeConfig::downscale() const {
  return int64_t{1} << (block_out_channels.empty() ? 0 : block_out_channels.size() - 1);
}

void VaeConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    if (v < 1 || v > kMaxChannels)
      throw Error(fmt::format("VaeConfig: {} = {}, expected 1..{}", field, v, kMaxChannels));
  };
  positive("in_channels", in_channels);
  positive("out_channels", out_channels);
  positive("latent_channels", latent_channels);
  positive("norm_num_groups", norm_num_groups);
  if (layers_per_block < 1 || layers_per_block > 64)
    throw Error(fmt::format("VaeConfig: layers_per_block = {}, expected 1..64",
                            layers_per_block));
  if (block_out_channels.empty() || static_cast<int64_t>(block_out_channels.size()) > kMaxLevels)
    throw Error(fmt::format("VaeConfig: block_out_channels has {} entries, expected 1..{}",
                            block_out_channels.size(), kMaxLevels));
  for (size_t i = 0; i < block_out_channels.size(); ++i) {
    const int64_t c = block_out_channels[i];
    if (c < 1 || c > kMaxChannels)
      throw Error(fmt::format("VaeConfig: block_out_channels[{}] = {}, expected 1..{}", i, c,
                              kMaxChannels));
    if (c % norm_num_groups != 0)
      throw Error(fmt::format("VaeConfig: block_out_channels[{}] = {} is not a multiple of "
                              "norm_num_groups = {} (set metadata 'vae.norm_num_groups')",
                              i, c, norm_num_groups));
  }
  if (!std::isfinite(scaling_factor) || scaling_factor <= 0)
    throw Error(fmt::format("VaeConfig: scaling_factor = {}, expected a positive number",
                            scaling_factor));
}

std::string VaeConfig::describe() const {
  return fmt::format("AutoencoderKL(in_channels {}, out_channels {}, latent_channels {}, "
                     "block_out_channels [{}], layers_per_block {}, norm_num_groups {}, "
                     "scaling_factor {})",
                     in_channels, out_channels, latent_channels,
                     fmt::join(block_out_channels, ", "), layers_per_block, norm_num_groups,
                     scaling_factor);
}

VaeConfig infer_vae_config(const TensorMap& weights, const Metadata& metadata,
                           const std::string& source) {
  return infer_canonical(canonicalize(weights, source), metadata, source);
}

// ---- AutoencoderKL ---------------------------------------------------------------------------

struct AutoencoderKL::Impl {
  std::string source;
  VaeConfig config;
  VaeLoadOptions options;
  bool has_encoder = false;
  Coder encoder, decoder;
  Conv quant_conv, post_quant_conv;
};

AutoencoderKL AutoencoderKL::from_weights(const TensorMap& weights, const Metadata& metadata,
                                          const std::string& source,
                                          const VaeLoadOptions& options) {
  const Canonical c = canonicalize(weights, source);
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->config = infer_canonical(c, metadata, source);
  impl->options = options;
  impl->has_encoder = has_encoder_keys(c.tensors);
  Loader loader(c, impl->config, source, options);
  const int64_t L = impl->config.latent_channels;
  impl->decoder = loader.decoder();
  impl->post_quant_conv = loader.conv("post_quant_conv", L, L, 1, 1, 0);
  if (impl->has_encoder) {
    impl->encoder = loader.encoder();
    impl->quant_conv = loader.conv("quant_conv", 2 * L, 2 * L, 1, 1, 0);
  }
  loader.check_all_used();
  return AutoencoderKL(std::move(impl));
}

AutoencoderKL AutoencoderKL::load(const std::string& path, const VaeLoadOptions& options) {
  Metadata metadata;
  const TensorMap weights = load_safetensors(path, &metadata);
  return from_weights(weights, metadata, path, options);
}

const VaeConfig& AutoencoderKL::config() const { return impl_->config; }
bool AutoencoderKL::has_encoder() const { return impl_->has_encoder; }
torch::Device AutoencoderKL::device() const { return impl_->options.device; }
torch::Dtype AutoencoderKL::dtype() const { return impl_->options.dtype; }

torch::Tensor AutoencoderKL::decode(const torch::Tensor& latents) const {
  const auto& cfg = impl_->config;
  if (latents.dim() != 4 || latents.size(1) != cfg.latent_channels || latents.size(0) < 1)
    throw Error(fmt::format("{}: AutoencoderKL::decode: latents must be [B, {}, h, w], got {}",
                            impl_->source, cfg.latent_channels, shape_str(latents.sizes())));
  torch::NoGradGuard no_grad;
  const auto& opt = impl_->options;
  auto z = latents.to(opt.device, opt.dtype).contiguous(kLayout);  // z: [B, L, h, w]
  z = impl_->post_quant_conv(z * (1.0 / cfg.scaling_factor));  // z: [B, L, h, w], VAE units
  return decoder_forward(impl_->decoder, z).contiguous();      // [B, out, h * s, w * s]
}

AutoencoderKL::Posterior AutoencoderKL::posterior(const torch::Tensor& images) const {
  const auto& cfg = impl_->config;
  if (!impl_->has_encoder)
    throw Error(fmt::format(
        "{}: AutoencoderKL::encode: this VAE file is decoder-only (no encoder.* or quant_conv.* "
        "tensors), so it cannot encode images; use the full AutoencoderKL weights (e.g. "
        "diffusion_pytorch_model.safetensors of stabilityai/sd-vae-ft-mse)",
        impl_->source));
  const int64_t s = cfg.downscale();
  if (images.dim() != 4 || images.size(1) != cfg.in_channels || images.size(0) < 1 ||
      images.size(2) < 1 || images.size(3) < 1 || images.size(2) % s || images.size(3) % s)
    throw Error(fmt::format("{}: AutoencoderKL::encode: images must be [B, {}, H, W] with H and "
                            "W multiples of {}, got {}",
                            impl_->source, cfg.in_channels, s, shape_str(images.sizes())));
  torch::NoGradGuard no_grad;
  const auto& opt = impl_->options;
  auto x = images.to(opt.device, opt.dtype).contiguous(kLayout);  // x: [B, in, H, W]
  auto moments = impl_->quant_conv(encoder_forward(impl_->encoder, x));  // [B, 2L, H/s, W/s]
  auto parts = moments.chunk(2, 1);
  return {parts[0].contiguous(), parts[1].clamp(-30.0, 20.0).contiguous()};  // [B, L, h, w]
}

torch::Tensor AutoencoderKL::encode(const torch::Tensor& images,
                                    std::optional<torch::Generator> sample) const {
  auto [mean, logvar] = posterior(images);  // each [B, L, h, w]
  torch::NoGradGuard no_grad;
  auto z = mean;
  if (sample) {
    // eps on the generator's device in float32, as diffusers' randn_tensor does, then moved.
    auto eps = at::randn(mean.sizes(), *sample,
                         torch::TensorOptions().dtype(torch::kFloat32).device(sample->device()))
                   .to(mean.device(), mean.scalar_type());  // eps: [B, L, h, w]
    z = mean + torch::exp(0.5 * logvar) * eps;
  }
  return z * impl_->config.scaling_factor;  // [B, L, h, w], DiT scale
}

}  // namespace dit
