// DiT configurations: reference presets, validation, and inference from checkpoint shapes.
#include <dit/error.h>
#include <dit/model.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <cmath>
#include <limits>
#include <map>
#include <utility>

namespace dit {

namespace {
struct Size {
  int64_t hidden, depth, heads;
};
// Table 1 of Peebles & Xie 2023.
const std::map<std::string, Size>& reference_sizes() {
  static const std::map<std::string, Size> sizes = {
      {"S", {384, 12, 6}}, {"B", {768, 12, 12}}, {"L", {1024, 24, 16}}, {"XL", {1152, 28, 16}}};
  return sizes;
}

int64_t heads_for_width(int64_t hidden) {
  for (const auto& [name, size] : reference_sizes())
    if (size.hidden == hidden) return size.heads;
  return hidden % 64 == 0 ? hidden / 64 : 0;
}
}  // namespace

void DiTConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("DiT config: " + what);
  };
  // Bounds far beyond any real model: configs inferred from a damaged file's shapes must not
  // overflow the shape arithmetic below and in the modules.
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"input_size", input_size},
                                    {"patch_size", patch_size}, {"in_channels", in_channels},
                                    {"hidden_size", hidden_size}, {"depth", depth},
                                    {"num_heads", num_heads}, {"num_classes", num_classes}})
    require(value <= kMaxConfigDim,
            fmt::format("{} = {} exceeds the limit {}", name, value, kMaxConfigDim));
  require(patch_size > 0, fmt::format("patch_size must be positive, got {}", patch_size));
  require(input_size > 0 && input_size % patch_size == 0,
          fmt::format("input_size {} must be a positive multiple of patch_size {}", input_size,
                      patch_size));
  require(in_channels > 0, fmt::format("in_channels must be positive, got {}", in_channels));
  require(depth > 0 && depth <= kMaxDepth,
          fmt::format("depth must be 1 to {}, got {}", kMaxDepth, depth));
  require(num_heads > 0 && hidden_size % num_heads == 0,
          fmt::format("hidden_size {} must be divisible by num_heads {}", hidden_size, num_heads));
  require(hidden_size % 4 == 0,
          fmt::format("hidden_size {} must be a multiple of 4 (2D sin-cos embedding)",
                      hidden_size));
  require(hidden_size > 0, fmt::format("hidden_size must be positive, got {}", hidden_size));
  require(std::isfinite(mlp_ratio) && mlp_ratio > 0 &&
              hidden_size * mlp_ratio <= static_cast<double>(kMaxConfigDim),
          fmt::format("mlp_ratio {} must be positive with an MLP width of at most {}", mlp_ratio,
                      kMaxConfigDim));
  require(mlp_hidden() > 0, fmt::format("MLP width {} * {} rounds to 0", hidden_size, mlp_ratio));
  require(num_classes >= 0, fmt::format("num_classes must be >= 0, got {}", num_classes));
  require(prediction == "flow" || prediction == "epsilon" || prediction == "sit",
          fmt::format("prediction '{}' is not one of flow, epsilon, sit", prediction));
  require(!step_conditioning || prediction == "flow",
          fmt::format("a step-conditioned model must be a flow model, not '{}'", prediction));
  require(parameter_count() <= kMaxParameters,
          fmt::format("{} parameters exceed the limit {}", parameter_count(), kMaxParameters));
}

int64_t DiTConfig::parameter_count() const {
  // 128-bit sums: every factor is at most kMaxConfigDim (2^24, checked by validate()), so no
  // term reaches 2^100. Saturates at INT64_MAX.
  using I = __int128;
  const I D = hidden_size, C = in_channels, P = patch_size, H = mlp_hidden();
  const I grid = patch_size > 0 ? input_size / patch_size : 0;
  const I out = P * P * out_channels();
  I n = D * C * P * P + D;                             // x_embedder.proj (conv) + bias
  n += 256 * D + D + D * D + D;                        // t_embedder.mlp.{0,2}
  if (step_conditioning) n += 256 * D + D + D * D + D;  // dt_embedder.mlp.{0,2}
  if (num_classes > 0) n += (I(num_classes) + 1) * D;  // y_embedder (+ null class)
  const I block = 3 * D * D + 3 * D + D * D + D        // attn.qkv, attn.proj
                  + H * D + H + H * D + D              // mlp.fc1, mlp.fc2
                  + 6 * D * D + 6 * D;                 // adaLN_modulation.1
  n += I(depth) * block;
  n += out * D + out + 2 * D * D + 2 * D;  // final_layer.linear, adaLN_modulation.1
  n += grid * grid * D;                    // pos_embed buffer
  const I max = std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(n > max ? max : n < 0 ? 0 : n);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> DiTConfig::weight_shapes() const {
  const int64_t D = hidden_size, C = in_channels, P = patch_size, H = mlp_hidden();
  const int64_t O = P * P * out_channels(), N = num_patches();
  std::vector<std::pair<std::string, std::vector<int64_t>>> s = {
      {"x_embedder.proj.weight", {D, C, P, P}}, {"x_embedder.proj.bias", {D}},
      {"t_embedder.mlp.0.weight", {D, 256}},    {"t_embedder.mlp.0.bias", {D}},
      {"t_embedder.mlp.2.weight", {D, D}},      {"t_embedder.mlp.2.bias", {D}},
      {"pos_embed", {1, N, D}}};
  if (num_classes > 0) s.push_back({"y_embedder.embedding_table.weight", {num_classes + 1, D}});
  if (step_conditioning)
    for (auto [name, shape] : {std::pair<const char*, std::vector<int64_t>>{"mlp.0.weight", {D, 256}},
                               {"mlp.0.bias", {D}}, {"mlp.2.weight", {D, D}}, {"mlp.2.bias", {D}}})
      s.push_back({std::string("dt_embedder.") + name, shape});
  for (int64_t i = 0; i < depth; ++i) {
    const std::string b = fmt::format("blocks.{}.", i);
    s.push_back({b + "attn.qkv.weight", {3 * D, D}});
    s.push_back({b + "attn.qkv.bias", {3 * D}});
    s.push_back({b + "attn.proj.weight", {D, D}});
    s.push_back({b + "attn.proj.bias", {D}});
    s.push_back({b + "mlp.fc1.weight", {H, D}});
    s.push_back({b + "mlp.fc1.bias", {H}});
    s.push_back({b + "mlp.fc2.weight", {D, H}});
    s.push_back({b + "mlp.fc2.bias", {D}});
    s.push_back({b + "adaLN_modulation.1.weight", {6 * D, D}});
    s.push_back({b + "adaLN_modulation.1.bias", {6 * D}});
  }
  s.push_back({"final_layer.linear.weight", {O, D}});
  s.push_back({"final_layer.linear.bias", {O}});
  s.push_back({"final_layer.adaLN_modulation.1.weight", {2 * D, D}});
  s.push_back({"final_layer.adaLN_modulation.1.bias", {2 * D}});
  return s;
}

std::string DiTConfig::describe() const {
  return fmt::format(
      "DiT input {}x{}x{}, patch {} ({} tokens), hidden {}, depth {}, heads {} (head dim {}), "
      "mlp {}, classes {}, learn_sigma {}{}{}",
      input_size, input_size, in_channels, patch_size, num_patches(), hidden_size, depth,
      num_heads, head_dim(), mlp_hidden(), num_classes, learn_sigma ? "yes" : "no",
      step_conditioning ? ", step-conditioned" : "",
      prediction == "flow" ? "" : fmt::format(", {}-prediction", prediction));
}

Metadata DiTConfig::to_metadata() const {
  Metadata m = {{"dit.input_size", std::to_string(input_size)},
          {"dit.patch_size", std::to_string(patch_size)},
          {"dit.in_channels", std::to_string(in_channels)},
          {"dit.hidden_size", std::to_string(hidden_size)},
          {"dit.depth", std::to_string(depth)},
          {"dit.num_heads", std::to_string(num_heads)},
          {"dit.mlp_ratio", fmt::format("{}", mlp_ratio)},
          {"dit.num_classes", std::to_string(num_classes)},
          {"dit.learn_sigma", learn_sigma ? "1" : "0"},
          {"dit.step_conditioning", step_conditioning ? "1" : "0"}};
  if (prediction != "flow") m["dit.prediction"] = prediction;  // flow files stay as they were
  return m;
}

DiTConfig DiTConfig::preset(const std::string& name_in) {
  std::string name = name_in.rfind("DiT-", 0) == 0 ? name_in.substr(4) : name_in;
  DiTConfig c;
  if (name == "tiny") {  // unit tests: 16 tokens, 2 blocks
    c.input_size = 8, c.patch_size = 2, c.in_channels = 4, c.hidden_size = 64, c.depth = 2,
    c.num_heads = 4, c.num_classes = 10, c.learn_sigma = true;
    return c;
  }
  if (name == "fmnist") {  // the bundled Fashion-MNIST model: patch 4 on 28x28 = 49 tokens
    c.input_size = 28, c.patch_size = 4, c.in_channels = 1, c.hidden_size = 192, c.depth = 6,
    c.num_heads = 3, c.num_classes = 10, c.learn_sigma = false;
    return c;
  }
  auto slash = name.find('/');
  if (slash != std::string::npos) {
    auto size = reference_sizes().find(name.substr(0, slash));
    std::string patch = name.substr(slash + 1);
    if (size != reference_sizes().end() && (patch == "2" || patch == "4" || patch == "8")) {
      c.hidden_size = size->second.hidden, c.depth = size->second.depth,
      c.num_heads = size->second.heads, c.patch_size = std::stoi(patch);
      return c;
    }
  }
  std::string valid;
  for (const auto& n : preset_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error(fmt::format("unknown DiT config '{}': expected one of {}", name_in, valid));
}

std::vector<std::string> DiTConfig::preset_names() {
  std::vector<std::string> names;
  for (const char* size : {"S", "B", "L", "XL"})
    for (const char* patch : {"2", "4", "8"}) names.push_back(fmt::format("DiT-{}/{}", size, patch));
  names.push_back("tiny");
  names.push_back("fmnist");
  return names;
}

DiTConfig infer_config(const ShapeLookup& shape_of, const Metadata& metadata,
                       const std::string& source, const std::string& prefix) {
  auto need = [&](const std::string& key, size_t rank) {
    auto shape = shape_of(prefix + key);
    if (!shape)
      throw Error(fmt::format("{}: tensor '{}{}' is missing: not a DiT checkpoint", source,
                              prefix, key));
    if (shape->size() != rank)
      throw Error(fmt::format("{}: tensor '{}{}' has rank {}, expected {}", source, prefix, key,
                              shape->size(), rank));
    return *shape;
  };
  // Shapes of a damaged file can hold any non-negative int64: bound each before arithmetic.
  const auto bounded = [&](const std::string& key, size_t rank) {
    auto shape = need(key, rank);
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] <= 0 || shape[i] > kMaxConfigDim)
        throw Error(fmt::format("{}: tensor '{}{}' has shape [{}]: dimension {} is outside "
                                "[1, {}]",
                                source, prefix, key, fmt::join(shape, ", "), i, kMaxConfigDim));
    return shape;
  };
  DiTConfig c;
  auto patch_w = bounded("x_embedder.proj.weight", 4);  // [D, C, p, p]
  c.hidden_size = patch_w[0], c.in_channels = patch_w[1], c.patch_size = patch_w[2];
  if (patch_w[2] != patch_w[3])
    throw Error(fmt::format("{}: x_embedder.proj.weight has non-square patch {}x{}", source,
                            patch_w[2], patch_w[3]));

  auto pos = bounded("pos_embed", 3);  // [1, N, D]
  auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(pos[1]))));
  if (grid * grid != pos[1] || pos[2] != c.hidden_size)
    throw Error(fmt::format("{}: pos_embed shape [1, {}, {}] is not [1, grid^2, hidden={}]",
                            source, pos[1], pos[2], c.hidden_size));
  c.input_size = grid * c.patch_size;

  c.depth = 0;
  while (shape_of(prefix + fmt::format("blocks.{}.attn.qkv.weight", c.depth))) ++c.depth;
  if (c.depth == 0)
    throw Error(fmt::format("{}: no blocks.0.attn.qkv.weight: not a DiT checkpoint", source));
  auto fc1 = bounded("blocks.0.mlp.fc1.weight", 2);  // [H, D]
  c.mlp_ratio = static_cast<double>(fc1[0]) / static_cast<double>(c.hidden_size);

  // Optional: [K + 1, D] (absent: unconditional).
  const bool conditional = shape_of(prefix + "y_embedder.embedding_table.weight").has_value();
  c.num_classes = conditional ? need("y_embedder.embedding_table.weight", 2)[0] - 1 : 0;

  auto final_w = bounded("final_layer.linear.weight", 2);  // [p*p*out, D]
  int64_t pp = c.patch_size * c.patch_size;
  int64_t out = final_w[0] / pp;
  if (out * pp != final_w[0] || (out != c.in_channels && out != 2 * c.in_channels))
    throw Error(fmt::format(
        "{}: final_layer.linear.weight has {} rows; expected patch^2 * C = {} or 2 * {} "
        "(learn_sigma)",
        source, final_w[0], pp * c.in_channels, pp * c.in_channels));
  c.learn_sigma = out == 2 * c.in_channels;

  // Optional step-size embedder (few-step models): its first layer is [D, 256].
  c.step_conditioning = shape_of(prefix + "dt_embedder.mlp.0.weight").has_value();
  if (c.step_conditioning) {
    auto dt0 = need("dt_embedder.mlp.0.weight", 2);
    if (dt0[0] != c.hidden_size || dt0[1] != 256)
      throw Error(fmt::format("{}: dt_embedder.mlp.0.weight has shape [{}], expected [{}, 256]",
                              source, fmt::join(dt0, ", "), c.hidden_size));
  }

  auto heads = metadata.find("dit.num_heads");
  if (heads != metadata.end()) {
    try {
      c.num_heads = std::stoll(heads->second);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: metadata dit.num_heads='{}' is not an integer", source,
                              heads->second));
    }
  } else {
    c.num_heads = heads_for_width(c.hidden_size);
    if (c.num_heads == 0)
      throw Error(fmt::format("{}: cannot infer the number of heads for width {}; store "
                              "'dit.num_heads' in the file's metadata",
                              source, c.hidden_size));
  }
  auto kind = metadata.find("dit.prediction");
  if (kind != metadata.end()) c.prediction = kind->second;  // checked by validate()
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
  return c;
}

DiTConfig infer_config(const SafeTensorsFile& file, const std::string& prefix) {
  return infer_config(
      [&](const std::string& name) -> std::optional<std::vector<int64_t>> {
        if (!file.contains(name)) return std::nullopt;
        return file.shape(name);
      },
      file.metadata(), file.path(), prefix);
}

}  // namespace dit
