// Moving weights between modules and safetensors files under the reference key names.
#include <dit/error.h>
#include <dit/fs.h>
#include <dit/model.h>
#include <dit/torch_pt.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <cctype>
#include <set>

namespace dit {

TensorMap state_dict(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

void load_state_dict(torch::nn::Module& module, const TensorMap& weights,
                     const std::string& source) {
  torch::NoGradGuard no_grad;
  std::set<std::string> unused;
  for (const auto& [name, _] : weights) unused.insert(name);
  for (auto& [name, target] : state_dict(module)) {
    auto it = weights.find(name);
    if (it == weights.end())
      throw Error(fmt::format("{}: tensor '{}' is missing (expected shape [{}])", source, name,
                              fmt::join(target.sizes(), ", ")));
    const auto& value = it->second;
    if (value.sizes() != target.sizes())
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", source, name,
                              fmt::join(value.sizes(), ", "), fmt::join(target.sizes(), ", ")));
    if (!value.is_floating_point())
      throw Error(fmt::format("{}: tensor '{}' has integer dtype {}, expected floating point",
                              source, name, std::string(c10::toString(value.scalar_type()))));
    auto converted = value.to(target.dtype());
    if (!torch::isfinite(converted).all().item<bool>())
      throw Error(fmt::format("{}: tensor '{}' contains NaN or Inf", source, name));
    target.copy_(converted);
    unused.erase(name);
  }
  if (!unused.empty())
    throw Error(fmt::format("{}: unexpected tensor '{}' ({} unexpected in all)", source,
                            *unused.begin(), unused.size()));
}

std::string weights_prefix(const SafeTensorsFile& file) {
  // Training checkpoints hold model.*, ema.* and optimizer state: use the EMA weights.
  return file.contains("ema.x_embedder.proj.weight") ? "ema." : "";
}

namespace {
// Model weights of a file: a view of every tensor of a safetensors file, or every tensor of a
// torch.save file, with the metadata (none in a .pt) and the prefix of the weights to use.
struct ModelTensors {
  TensorMap tensors;
  Metadata metadata;
  std::string prefix;
  bool torch_pt = false;
};

ModelTensors read_model_tensors(const std::string& path) {
  ModelTensors m;
  if (is_torch_zip_file(path)) {
    m.tensors = load_torch_pt(path);
    m.torch_pt = true;
    // Training checkpoints of the reference code: {"model", "ema", "opt", "args"}: the EMA.
    for (const char* prefix : {"ema.", "model."})
      if (m.tensors.count(std::string(prefix) + "x_embedder.proj.weight")) {
        m.prefix = prefix;
        break;
      }
    return m;
  }
  SafeTensorsFile file(path);
  m.metadata = file.metadata();
  m.prefix = weights_prefix(file);
  for (const auto& name : file.names()) m.tensors[name] = file.view(name);  // zero copy
  return m;
}

std::string kind_from_name(const std::string& path) {
  std::string name = dit::fs::path(path).filename().string();
  for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name.rfind("sit", 0) == 0 ? "sit" : "epsilon";
}
}  // namespace

DiT load_dit(const std::string& path, torch::Dtype dtype) {
  DiTLoadOptions options;
  options.dtype = dtype;
  return load_dit(path, options);
}

DiT load_dit(const std::string& path, const DiTLoadOptions& options) {
  ModelTensors m = read_model_tensors(path);
  const std::string& prefix = m.prefix;
  auto shape_of = [&](const std::string& name) -> std::optional<std::vector<int64_t>> {
    auto it = m.tensors.find(name);
    if (it == m.tensors.end()) return std::nullopt;
    return it->second.sizes().vec();
  };
  Metadata metadata = m.metadata;
  if (options.heads > 0) metadata["dit.num_heads"] = std::to_string(options.heads);
  if (!options.prediction.empty())
    metadata["dit.prediction"] = options.prediction;
  else if (m.torch_pt && !metadata.count("dit.prediction"))
    metadata["dit.prediction"] = kind_from_name(path);
  DiTConfig config = infer_config(shape_of, metadata, path, prefix);
  // Shapes alone can describe a huge model in a tiny file (zero-sized tensors elsewhere):
  // check every tensor's shape before allocating the model.
  for (const auto& [name, shape] : config.weight_shapes()) {
    const auto stored = shape_of(prefix + name);
    if (!stored)
      throw Error(fmt::format("{}: tensor '{}' is missing (expected shape [{}])", path, name,
                              fmt::join(shape, ", ")));
    if (*stored != shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", path, name,
                              fmt::join(*stored, ", "), fmt::join(shape, ", ")));
  }
  DiT model(config, /*initialize=*/false);  // every tensor is loaded below
  TensorMap weights;
  for (auto& [name, tensor] : m.tensors)
    if (name.rfind(prefix, 0) == 0) weights[name.substr(prefix.size())] = tensor;
  load_state_dict(*model, weights, path);
  model->to(options.dtype);
  model->eval();
  return model;
}

DiT with_step_conditioning(DiT& model) {
  if (model->config().step_conditioning)
    throw Error("with_step_conditioning: the model is already step-conditioned");
  DiTConfig config = model->config();
  config.step_conditioning = true;
  DiT out(config);  // fresh dt_embedder with a zero last layer: same outputs as `model`
  TensorMap weights = state_dict(*out);
  for (auto& [name, t] : state_dict(*model)) weights[name] = t;
  load_state_dict(*out, weights, "with_step_conditioning");
  out->to(model->parameters().front().scalar_type());
  return out;
}

void save_dit(const std::string& path, DiT& model, torch::Dtype dtype, Metadata extra) {
  TensorMap weights;
  for (auto& [name, t] : state_dict(*model)) weights[name] = t.detach().to(dtype).contiguous();
  Metadata meta = model->config().to_metadata();
  meta["format"] = "dit-engine model";
  for (auto& [k, v] : extra) meta[k] = v;
  save_safetensors(path, weights, meta);
}

}  // namespace dit
