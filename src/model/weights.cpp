// Moving weights between modules and safetensors files under the reference key names.
#include <dit/error.h>
#include <dit/model.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

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

DiT load_dit(const std::string& path, torch::Dtype dtype) {
  SafeTensorsFile file(path);
  const std::string prefix = weights_prefix(file);
  DiTConfig config = infer_config(file, prefix);
  // Shapes alone can describe a huge model in a tiny file (zero-sized tensors elsewhere):
  // check every tensor's shape before allocating the model.
  for (const auto& [name, shape] : config.weight_shapes()) {
    if (!file.contains(prefix + name))
      throw Error(fmt::format("{}: tensor '{}' is missing (expected shape [{}])", path, name,
                              fmt::join(shape, ", ")));
    const auto stored = file.shape(prefix + name);
    if (stored != shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", path, name,
                              fmt::join(stored, ", "), fmt::join(shape, ", ")));
  }
  DiT model(config, /*initialize=*/false);  // every tensor is loaded below
  TensorMap weights;
  for (const auto& name : file.names())
    if (name.rfind(prefix, 0) == 0) weights[name.substr(prefix.size())] = file.view(name);
  load_state_dict(*model, weights, path);
  model->to(dtype);
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
