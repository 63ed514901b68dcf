// dit convert: published checkpoints (torch.save .pt files: DiT / SiT state dicts or training
// checkpoints, diffusers VAE weights) to safetensors, with what the .pt does not say (the head
// count, the model's kind, the VAE's scale) written into the metadata, so the converted file
// loads without flags and without the pickle reader.
#include <dit/error.h>
#include <dit/model.h>
#include <dit/safetensors.h>
#include <dit/torch_pt.h>
#include <dit/vae.h>
#include <fmt/format.h>

#include "commands.h"

namespace dit::cli {

namespace {
struct ConvertArgs {
  std::string input, output, dtype = "fp32";
  DiTLoadOptions load;  // --heads, --prediction
};

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat32;
  if (name == "fp16") return torch::kFloat16;
  if (name == "bf16") return torch::kBFloat16;
  throw Error(fmt::format("--dtype {}: expected fp32, fp16 or bf16", name));
}

void run_convert(const ConvertArgs& a) {
  const torch::Dtype dtype = parse_dtype(a.dtype);
  const TensorMap tensors =
      is_torch_zip_file(a.input) ? load_torch_pt(a.input) : load_safetensors(a.input);
  if (tensors.count("decoder.conv_in.weight") || tensors.count("encoder.conv_in.weight")) {
    // A VAE: checked by loading it (every key and shape), then written as it is.
    const AutoencoderKL vae = AutoencoderKL::from_weights(tensors, {}, a.input);
    const VaeConfig& config = vae.config();
    const Metadata meta = {{"format", "diffusers AutoencoderKL"}, {"source", a.input},
                           {"vae.norm_num_groups", std::to_string(config.norm_num_groups)},
                           {"vae.scaling_factor", fmt::format("{}", config.scaling_factor)}};
    TensorMap out;
    for (const auto& [name, t] : tensors) out[name] = t.to(dtype).contiguous();
    save_safetensors(a.output, out, meta);
    fmt::print(stderr, "wrote {}: {}\n", a.output, config.describe());
    return;
  }
  DiT model = load_dit(a.input, a.load);
  save_dit(a.output, model, dtype, {{"source", a.input}});
  fmt::print(stderr, "wrote {}: {}\n", a.output, model->config().describe());
}
}  // namespace

void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Convert a checkpoint (torch.save .pt: DiT, SiT or VAE) to safetensors");
  cmd->add_option("input", a->input, "Checkpoint (.pt / .pth / .bin written by torch.save, or safetensors)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("output", a->output, "Output .safetensors")->required();
  add_load_options(*cmd, a->load);
  cmd->add_option("--dtype", a->dtype, "Stored dtype: fp32, fp16 or bf16")->capture_default_str()->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->callback([a] { run_convert(*a); });
}

}  // namespace dit::cli
