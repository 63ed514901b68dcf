// dit-bench vae: the SD VAE decoder (dit::AutoencoderKL, domains/image/vae.cpp) against PyTorch
// eager (apps/bench/pytorch_vae.py: diffusers' AutoencoderKL architecture re-implemented in
// apps/bench/vae_reference.py) on the same random weights and latents, in one run.
//
//   dit-bench vae [--batch 1] [--latent 32] [--threads N] [--iters 5] [--channels-last]
//
// The PyTorch process builds and randomises the VAE (the sd-vae-ft-* config by default), writes
// its weights and latents, times its decode and writes its images; the engine loads those
// weights, decodes the same latents with the same protocol, and the outputs are compared.
#include <CLI/CLI.hpp>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <dit/vae.h>
#include <fmt/format.h>

#include "bench_common.h"

namespace dit::bench {

namespace {
struct VaeBenchOptions {
  int64_t batch = 1, latent = 32, layers_per_block = 2, groups = 32;
  std::string block_out_channels = "128,256,512,512";
  int threads = 0, iters = 5;
  bool channels_last = false, keep_temp = false;
  std::string python = "/usr/bin/python3";
  std::string script = std::string(DIT_BENCH_SCRIPT_DIR) + "/pytorch_vae.py";
};

void run_vae(const VaeBenchOptions& o) {
  const int threads = set_threads(o.threads);
  const double load_before = load_average();
  TempDir tmp("dit-bench-vae");
  if (o.keep_temp) tmp.keep();
  const std::string weights = tmp.path() + "/vae.safetensors", io = tmp.path() + "/io.safetensors";
  Protocol protocol;
  protocol.iters = o.iters;
  const std::vector<std::string> argv = {
      o.python, o.script, "--weights", weights, "--io", io, "--batch", std::to_string(o.batch),
      "--latent", std::to_string(o.latent), "--block-out-channels", o.block_out_channels,
      "--layers-per-block", std::to_string(o.layers_per_block), "--groups", std::to_string(o.groups),
      "--threads", std::to_string(threads), "--iters", std::to_string(o.iters),
      "--warmup", std::to_string(protocol.warmup), "--warmup-time", fmt::format("{}", protocol.warmup_time)};
  std::vector<std::string> args = argv;
  if (o.channels_last) args.push_back("--channels-last");
  nlohmann::json py;
  const std::string text = run_capture(args, baseline_env(threads));
  try {
    py = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: output is not JSON ({})", o.script, e.what()));
  }

  torch::InferenceMode inference;
  const AutoencoderKL vae = AutoencoderKL::load(weights);
  const TensorMap ref = load_safetensors(io);
  const torch::Tensor latents = ref.at("latents");  // [B, 4, S, S]
  torch::Tensor images;
  const Timing t = time_runs([&] { images = vae.decode(latents); }, protocol);
  const double err = (images - ref.at("images")).abs().max().item<double>();
  const double scale = ref.at("images").abs().max().item<double>();

  const auto& d = py["decode"];
  fmt::print("machine:   {}; load average {:.2f} at start\n", machine().line(), load_before);
  fmt::print("cpu flags: {}\n", cpu_flags_line());
  fmt::print("threads:   {} (both sides)\n", threads);
  fmt::print("vae:       {}\n", vae.config().describe());
  fmt::print("job:       decode [{}, 4, {}, {}] -> [{}, 3, {}, {}], fp32\n", o.batch, o.latent, o.latent,
             o.batch, o.latent * vae.config().downscale(), o.latent * vae.config().downscale());
  fmt::print("protocol:  {}\n", protocol.describe());
  fmt::print("pytorch:   torch {} (python {}), eager, inference_mode, {}, {} threads\n",
             py["torch_version"].get<std::string>(), py["python"].get<std::string>(),
             o.channels_last ? "channels-last" : "NCHW", py["threads"].get<int>());
  fmt::print("parity:    max |engine - pytorch| = {:.2e} (output max |x| {:.2f})\n", err, scale);
  const double pms = d["median_ms"].get<double>();
  fmt::print("\n{:>24}  {:>24}  {:>7}\n", "engine ms [min..max]", "pytorch ms [min..max]", "ratio");
  fmt::print("{:>24}  {:>24}  {:>7.2f}\n", spread(t),
             fmt::format("{} [{}..{}]", ms_cell(pms), ms_cell(d["min_ms"].get<double>()),
                         ms_cell(d["max_ms"].get<double>())),
             pms / t.median_ms);
  fmt::print("ratio = pytorch ms / engine ms (> 1: engine faster); medians; load average {:.2f} at end\n",
             load_average());
  if (!(err <= 1e-3 * std::max(1.0, scale)))
    throw Error(fmt::format("parity failed: max |engine - pytorch| = {} > 1e-3 x {}", err, std::max(1.0, scale)));
}
}  // namespace

void add_vae(CLI::App& app) {
  auto o = std::make_shared<VaeBenchOptions>();
  auto* cmd = app.add_subcommand(
      "vae", "SD VAE decode: engine vs PyTorch eager on the same random weights and latents");
  cmd->add_option("--batch", o->batch, "Latents per decode")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--latent", o->latent, "Latent side (32: 256x256 images)")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--block-out-channels", o->block_out_channels, "The VAE's channels per level")->capture_default_str();
  cmd->add_option("--layers-per-block", o->layers_per_block, "Resnets per encoder block")->capture_default_str();
  cmd->add_option("--groups", o->groups, "Group-norm groups")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Intra-op threads for both sides (0: all cores)")->capture_default_str();
  cmd->add_option("--iters", o->iters, "Timed runs")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_flag("--channels-last", o->channels_last, "PyTorch side in channels-last memory format");
  cmd->add_option("--python", o->python, "Python interpreter with torch")->capture_default_str();
  cmd->add_flag("--keep-temp", o->keep_temp, "Keep the temporary weights and latents");
  cmd->callback([o] { run_vae(*o); });
}

}  // namespace dit::bench
