#include <dit/error.h>
#include <dit/flow.h>
#include <dit/image.h>
#include <fmt/format.h>

namespace dit {

namespace {
// Stream id so SDE noise never reuses the initial-noise generator of the same image.
constexpr uint64_t kSdeStream = 0x5344455ULL;
}  // namespace

torch::Tensor generate_images(DiT& model, const torch::Tensor& labels,
                              const ImageSampling& sampling, Progress& progress,
                              SampleStats* stats, int64_t first_index,
                              const torch::Tensor& init_noise, torch::Tensor* finite_out) {
  torch::NoGradGuard no_grad;
  const auto& c = model->config();
  const int64_t count = labels.size(0);
  auto sampler = make_sampler(sampling.sampler);
  auto noise = init_noise.defined()
                   ? init_noise
                   : sample_noise(sampling.seed, first_index, count,
                                  {c.in_channels, c.input_size, c.input_size});
  if (sampler->uses_flow_map() && !c.step_conditioning)
    throw Error(fmt::format("sampler \"{}\" needs a step-conditioned (few-step) model; this one "
                            "is a plain flow model: use euler, heun, dopri5, ...",
                            sampling.sampler));
  auto flow_map = dit_flow_map(model);  // one inference path (and workspace) for both
  auto velocity = velocity_of(flow_map);
  SampleStats total;
  std::vector<torch::Tensor> outputs, finites;
  for (int64_t first = 0; first < count; first += sampling.chunk) {
    const int64_t n = std::min(sampling.chunk, count - first);
    auto y = labels.narrow(0, first, n);
    auto guided = [&](const ConditionalVelocityFn& f) {
      return c.num_classes > 0
                 ? classifier_free_guidance(f, y, c.null_class(), sampling.guidance)
                 : VelocityFn([f, y](const torch::Tensor& x, const torch::Tensor& t) {
                     return f(x, t, y);
                   });
    };
    VelocityFn v = guided(velocity);
    SampleOptions opts = sampling.options;
    if (sampler->uses_flow_map())  // guidance applies to the flow map at each step size
      opts.flow_map = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& d) {
        auto at_d = [&](const torch::Tensor& xx, const torch::Tensor& tt, const torch::Tensor& yy) {
          // CFG runs cond and uncond as one batch of 2B: the step sizes follow.
          return flow_map(xx, tt, d.size(0) == xx.size(0) ? d : d.repeat({xx.size(0) / d.size(0)}), yy);
        };
        auto out = guided(at_d)(x, t);
        progress.advance();
        return out;
      };
    opts.generators.clear();
    for (int64_t i = 0; i < n; ++i)
      opts.generators.push_back(sample_generator(
          sampling.seed ^ kSdeStream, static_cast<uint64_t>(first_index + first + i)));
    SampleStats chunk_stats;
    Progress inner;  // silent: `progress` counts evaluations across chunks
    auto counted = [&](const torch::Tensor& x, const torch::Tensor& t) {
      auto out = v(x, t);
      progress.advance();
      return out;
    };
    auto x0 = sampler->sample(counted, noise.narrow(0, first, n), opts, inner, &chunk_stats);
    // Stats describe one trajectory: the most expensive chunk (chunks differ for dopri5).
    total.nfe = std::max(total.nfe, chunk_stats.nfe);
    total.steps = std::max(total.steps, chunk_stats.steps);
    total.rejected = std::max(total.rejected, chunk_stats.rejected);
    auto finite = torch::isfinite(x0).flatten(1).all(1);
    if (finite_out) {
      finites.push_back(finite);
    } else if (!finite.all().item<bool>()) {
      int64_t bad = finite.logical_not().nonzero()[0][0].item<int64_t>();
      throw Error(fmt::format("sample {} (seed {}) became non-finite during sampling",
                              first_index + first + bad, sampling.seed));
    }
    outputs.push_back(x0);
  }
  if (stats) *stats = total;
  if (finite_out) *finite_out = torch::cat(finites);
  return torch::cat(outputs);  // [count, C, H, W]
}

std::string default_image_model_path() { return data_dir() + "/models/fmnist-dit.safetensors"; }

}  // namespace dit
