// dit image sample: class-conditional image generation with any registered sampler and
// classifier-free guidance, written as a PNG grid (and optionally raw samples to HDF5).
#include <dit/error.h>
#include <dit/image.h>
#include <dit/inference.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <dit/vae.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <dit/fs.h>
#include <optional>
#include <sstream>

#include "commands.h"

namespace dit::cli {

namespace {
struct ImageSampleArgs {
  std::string model, output = "grid.png", h5, init_noise, sampler = "euler", grid = "uniform";
  std::string vae, latent_out;
  DiTLoadOptions load;     // --heads, --prediction
  int64_t cfg_channels = -1;  // -1: the model's kind decides (dit/guidance.h)
  double eta = 0.0;
  bool sampler_given = false;
  std::vector<int64_t> classes;
  int64_t count = 16, nrow = 0, chunk = 64;
  int steps = 30, threads = 0;
  Placement placement;  // --device, --dtype
  bool timings = false;
  double cfg_scale = kAutoCfgScale, cfg_rescale = 0.0, shift = 3.0, atol = 1e-4, rtol = 1e-4, diffusion = 1.0;
  std::vector<double> cfg_interval{0.0, 1.0};
  uint64_t seed = 42;
};

constexpr double kMaxNoise = 100.0;

// Fails before any sampling when an output cannot be created: its directory must exist.
void check_output_dir(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const auto dir = dit::fs::path(path).parent_path();
  if (!dir.empty() && !dit::fs::is_directory(dir))
    throw Error(fmt::format("{} {}: directory {} does not exist", flag, path, dir.string()));
}

torch::Tensor read_init_noise(const std::string& path, int64_t count, const DiTConfig& c) {
  Metadata meta;
  auto tensors = load_safetensors(path, &meta);
  auto it = tensors.find("noise");
  if (it == tensors.end())
    throw Error(fmt::format("{}: tensor 'noise' missing (expected [{}, {}, {}, {}])", path,
                            count, c.in_channels, c.input_size, c.input_size));
  if (!it->second.is_floating_point())
    throw Error(fmt::format("{}: tensor 'noise' has dtype {}, expected floating point (F32, F16, "
                            "BF16 or F64)", path, std::string(c10::toString(it->second.scalar_type()))));
  auto noise = it->second.to(torch::kFloat32);
  std::vector<int64_t> want{count, c.in_channels, c.input_size, c.input_size};
  if (noise.sizes() != torch::IntArrayRef(want))
    throw Error(fmt::format("{}: tensor 'noise' has shape [{}], expected [{}] (-b and the model)",
                            path, fmt::join(noise.sizes(), ", "), fmt::join(want, ", ")));
  if (!torch::isfinite(noise).all().item<bool>())
    throw Error(fmt::format("{}: tensor 'noise' contains NaN or Inf", path));
  // Standard normal noise never comes near this (P(|x| > 100) ~ 1e-2174); pixel values or other
  // units do.
  const double peak = noise.abs().max().item<double>();
  if (peak > kMaxNoise)
    throw Error(fmt::format("{}: tensor 'noise' has values up to {}: expected standard normal "
                            "noise (|x| <= {})", path, peak, kMaxNoise));
  return noise;
}

// Latents [B, 4, h, w] -> images [B, 3, 8h, 8w] in [-1, 1], a few at a time (a 256x256 decode
// holds ~0.5 GB of activations per image).
torch::Tensor decode_latents(const AutoencoderKL& vae, const torch::Tensor& latents, int64_t chunk) {
  const int64_t step = std::min<int64_t>(chunk, 4);
  std::vector<torch::Tensor> images;
  for (int64_t first = 0; first < latents.size(0); first += step)
    images.push_back(
        vae.decode(latents.narrow(0, first, std::min(step, latents.size(0) - first))).cpu());
  return torch::cat(images);
}

void run_image_sample(const ImageSampleArgs& a) {
  set_threads(a.threads);
  check_output_dir("-o", a.output);
  check_output_dir("--h5", a.h5);
  const std::string model_path = a.model.empty() ? default_model_path() : a.model;
  check_output_dir("--latent-out", a.latent_out);
  torch::NoGradGuard no_grad;
  DiT model = load_dit(model_path, a.load);
  const std::string placed = place_for_sampling(*model, a.placement);
  const auto& c = model->config();
  // Latent models (4 channels: published DiT / SiT checkpoints) need a VAE for pixels; without
  // one the run writes its latents and says that no image was decoded.
  const bool latent = c.in_channels != 1 && c.in_channels != 3;
  std::optional<AutoencoderKL> vae;
  if (!a.vae.empty()) {
    VaeLoadOptions where;  // the VAE runs where the DiT runs (float32: its group norms)
    where.device = model->parameters().front().device();
    vae = AutoencoderKL::load(a.vae, where);
    if (vae->config().latent_channels != c.in_channels)
      throw Error(fmt::format("--vae {}: {} latent channels, but {} samples {} channels", a.vae,
                              vae->config().latent_channels, model_path, c.in_channels));
  }
  std::string latent_out = a.latent_out;
  if (latent && !vae && latent_out.empty() && !a.output.empty())
    latent_out = dit::fs::path(a.output).replace_extension(".latents.safetensors").string();
  const double loaded_s = process_age_s();
  // The kind selects the default sampler: the published DiT checkpoints' own (DDPM).
  const std::string sampler_name =
      !a.sampler_given && model->prediction() == "epsilon" ? "ddpm" : a.sampler;
  auto sampler = make_sampler(sampler_name);
  const double cfg_scale = resolve_cfg_scale(a.cfg_scale, sampler->uses_flow_map(), model->prediction());

  // Labels: one class for all, or a list cycled over the images; default all classes.
  std::vector<int64_t> classes = a.classes;
  if (classes.empty())
    for (int64_t k = 0; k < std::max<int64_t>(1, c.num_classes); ++k) classes.push_back(k);
  for (auto k : classes)
    if (c.num_classes > 0 && (k < 0 || k >= c.num_classes))
      throw Error(fmt::format("--class {} out of range: {} has classes 0..{}", k, model_path,
                              c.num_classes - 1));
  auto labels = torch::empty({a.count}, torch::kLong);
  for (int64_t i = 0; i < a.count; ++i)
    labels[i] = classes[static_cast<size_t>(i) % classes.size()];
  // Group same-class images together in the grid when several classes are cycled.
  if (classes.size() > 1) labels = std::get<0>(labels.sort());  // ascending class ids

  torch::Tensor noise;  // undefined: seeded per image by generate_images
  if (!a.init_noise.empty()) noise = read_init_noise(a.init_noise, a.count, c);
  ImageSampling sampling;
  sampling.sampler = sampler_name, sampling.seed = a.seed, sampling.chunk = a.chunk;
  auto& g = sampling.guidance;
  g.scale = cfg_scale, g.t_lo = a.cfg_interval[0], g.t_hi = a.cfg_interval[1];
  g.rescale = a.cfg_rescale;
  g.guided_channels = a.cfg_channels;  // -1: the model's kind decides (dit/guidance.h)
  auto& opts = sampling.options;
  opts.steps = a.steps, opts.grid.name = a.grid, opts.grid.shift = a.shift;
  opts.atol = a.atol, opts.rtol = a.rtol, opts.diffusion = a.diffusion, opts.eta = a.eta;

  // The bar counts velocity evaluations (adaptive samplers: total unknown in advance).
  Progress progress(fmt::format("sample {} x{}", sampler_name, a.count),
                    sampler->adaptive() ? 0 : a.steps * sampler->nfe_per_step() *
                                                  ((a.count + a.chunk - 1) / a.chunk));
  SampleStats total;
  auto samples = generate_images(model, labels, sampling, progress, &total, 0, noise);
  progress.finish(fmt::format("NFE {}", total.nfe));
  torch::Tensor latents, images = samples;  // images in model space [-1, 1]
  if (latent) {
    latents = samples;  // [B, 4, h, w]
    images = vae ? decode_latents(*vae, latents, a.chunk) : torch::Tensor();
  }
  const double sampled_s = process_age_s();

  std::ostringstream params;
  params << "dit image sample --model " << model_path << " --sampler " << sampler_name
         << " --steps " << a.steps << " --cfg-scale " << cfg_scale << " --seed " << a.seed
         << " -b " << a.count << " --classes ";
  for (int64_t i = 0; i < a.count; ++i) params << (i ? "," : "") << labels[i].item<int64_t>();
  const nlohmann::json parameters = {
      {"model", {{"path", model_path}, {"config", c.describe()}, {"vae", a.vae}}},
      {"sampler",
       {{"name", sampler_name}, {"steps", a.steps}, {"eta", a.eta},
        {"cfg_channels", guided_channels_for(*model, g.guided_channels)}, {"time_grid", a.grid}, {"shift", a.shift},
        {"cfg_scale", cfg_scale}, {"cfg_interval", {a.cfg_interval[0], a.cfg_interval[1]}},
        {"cfg_rescale", a.cfg_rescale}, {"nfe", total.nfe}}},
      {"seeds", {{"seed", std::to_string(a.seed)}, {"init_noise", a.init_noise}}},
      {"command", params.str()}};

  int64_t nrow = a.nrow > 0 ? a.nrow : static_cast<int64_t>(std::ceil(std::sqrt(double(a.count))));
  // Outputs written so far, removed again if a later one fails (a failed run leaves nothing).
  std::vector<std::string> written;
  auto remove_written = [&written] {
    for (const auto& path : written) dit::fs::remove(path);
  };
  if (!latent_out.empty()) {
    // The sampler's output: a latent model's latents, a pixel model's samples in model space.
    save_safetensors(latent_out, {{"latents", samples}},
                     {{"parameters", params.str()}, {"format", "dit-engine latents"}});
    written.push_back(latent_out);
    fmt::print(stderr, "wrote {} (tensor 'latents' [{}])\n", latent_out, fmt::join(samples.sizes(), ", "));
  }
  if (latent && !vae)
    fmt::print(stderr, "no image decoded: {} samples {}-channel latents; give --vae FILE (the "
                       "Stable Diffusion VAE) to decode them\n", model_path, c.in_channels);
  if (!a.output.empty() && images.defined()) {
    try {
      write_png_grid(a.output, model_space_to_pixels(images), nrow,
                     {{"parameters", params.str()}, {"Software", "dit-engine " DIT_VERSION_STRING}});
    } catch (...) {
      remove_written();
      throw;
    }
    written.push_back(a.output);
    fmt::print(stderr, "wrote {} ({} images, NFE {})\n", a.output, a.count, total.nfe);
  }
  if (!a.h5.empty()) {
    auto seeds = torch::empty({a.count}, torch::kLong);
    for (int64_t i = 0; i < a.count; ++i)
      seeds[i] = static_cast<int64_t>(mix_seed(a.seed, static_cast<uint64_t>(i)));
    try {
      write_image_samples_h5(a.h5, images, labels, seeds, parameters, latents);
    } catch (...) {  // a failed run leaves no output: not the grid of a run that failed either
      remove_written();
      throw;
    }
    fmt::print(stderr, "wrote {}\n", a.h5);
  }
  if (a.timings) {
    const double end_s = process_age_s();
    fmt::print(stderr,
               "timings: start-up {:.3f} s (process start to model loaded), sampling {:.3f} s, "
               "output {:.3f} s, total {:.3f} s; {}\n",
               loaded_s, sampled_s - loaded_s, end_s - sampled_s, end_s, placed);
  }
}
}  // namespace

void add_image_sample(CLI::App& image) {
  auto a = std::make_shared<ImageSampleArgs>();
  auto* cmd = image.add_subcommand("sample", "Generate images with a DiT (default: the bundled Fashion-MNIST model)");
  cmd->add_option("-m,--model", a->model, "Model file (.safetensors, or a torch.save .pt: the published DiT / SiT checkpoints); default: bundled model");
  cmd->add_option("--vae", a->vae, "Decode latents with this VAE (diffusers AutoencoderKL safetensors, e.g. sd-vae-ft-ema)")->check(CLI::ExistingFile);
  cmd->add_option("--latent-out", a->latent_out, "Write the final latents to this safetensors file (tensor 'latents')");
  add_load_options(*cmd, a->load);
  cmd->add_option("--eta", a->eta, "DDIM eta (0: deterministic)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--cfg-channels", a->cfg_channels, "Guided output channels (default: 3 for published DiT/SiT checkpoints, as their forward_with_cfg; all for our models)")->check(CLI::Range(0, 4096));
  auto* cls = cmd->add_option("--class", a->classes, "Class id for every image (repeatable)");
  cmd->add_option("--classes", a->classes, "Comma-separated class ids, cycled over the images")
      ->delimiter(',')->excludes(cls);
  cmd->add_option("-b,--batch-count", a->count, "Number of images")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--steps", a->steps, "Sampling steps")->capture_default_str()->check(CLI::Range(1, 10000));
  auto* sampler = cmd->add_option("--sampler", a->sampler, "Sampler: euler, heun, midpoint, rk4, dopri5, euler-maruyama; few-step models: flowmap, flowmap-renoise; epsilon models (published DiT): ddpm (their default), ddim")->capture_default_str();
  cmd->add_option("--cfg-scale", a->cfg_scale, "Classifier-free guidance scale (1: off; default 2 for our models, 4 for published DiT/SiT checkpoints, 1 for the flowmap samplers of few-step models, which have guidance distilled in)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--cfg-interval", a->cfg_interval, "Guidance only for t in [lo,hi]")->delimiter(',')->expected(2)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--cfg-rescale", a->cfg_rescale, "Guidance rescale phi in [0,1]")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--schedule", a->grid, "Time grid: uniform or shifted")->capture_default_str()->check(CLI::IsMember({"uniform", "shifted"}));
  cmd->add_option("--shift", a->shift, "Shift of the shifted time grid")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--atol", a->atol, "dopri5 absolute tolerance")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--rtol", a->rtol, "dopri5 relative tolerance")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--diffusion", a->diffusion, "euler-maruyama noise level")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-s,--seed", a->seed, "Seed: image i uses noise seeded by (seed, i)")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_placement_options(*cmd, a->placement);
  cmd->add_flag("--timings", a->timings,
                "Print start-up (process start to model loaded), sampling and output seconds");
  cmd->add_option("-o,--output", a->output, "PNG grid path ('' to skip)")->capture_default_str();
  cmd->add_option("--nrow", a->nrow, "Images per grid row (default: square)");
  cmd->add_option("--h5", a->h5, "Also write raw samples, labels and seeds to this HDF5 file");
  cmd->add_option("--init-noise", a->init_noise, "Start from tensor 'noise' [B,C,H,W] in this safetensors file (latent models: [B,4,H/8,W/8])")
      ->check(CLI::ExistingFile);
  cmd->add_option("--chunk", a->chunk, "Images per model batch")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->callback([a, sampler] {
    a->sampler_given = sampler->count() > 0;
    run_image_sample(*a);
  });
}

}  // namespace dit::cli
