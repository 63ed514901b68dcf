// The stepping loop shared by every fixed-step sampler (see fixed_step.h).
#include "samplers/fixed_step.h"

#include <dit/error.h>
#include <fmt/format.h>

namespace dit::samplers_detail {

void check_x1(const char* sampler, const torch::Tensor& x1) {
  if (!x1.defined() || x1.dim() < 1) {
    throw Error(fmt::format("sampler \"{}\": x1 must be a defined tensor [B, ...]", sampler));
  }
  if (!x1.is_floating_point()) {
    throw Error(fmt::format("sampler \"{}\": x1 has dtype {}, expected a floating-point dtype",
                            sampler, std::string(c10::toString(x1.scalar_type()))));
  }
}

torch::Tensor integrate_fixed(const char* sampler, const VelocityFn& v, torch::Tensor x1,
                              const SampleOptions& opts, Progress& progress, SampleStats* stats,
                              const StepFn& step) {
  check_x1(sampler, x1);
  if (opts.steps < 1) {
    throw Error(fmt::format("sampler \"{}\": steps = {}, expected an integer >= 1", sampler,
                            opts.steps));
  }
  const std::vector<double> ts = make_time_grid(opts.grid)->times(opts.steps);  // 1 -> 0
  torch::Tensor x = std::move(x1);  // x: [B, ...]
  int nfe = 0;
  for (int i = 0; i < opts.steps; ++i) {
    x = step(v, x, ts[i], ts[i + 1], i, nfe);
    if (opts.project) opts.project(x, ts[i + 1]);
    progress.update(i + 1, "");
  }
  if (stats) {
    stats->nfe = nfe;
    stats->steps = opts.steps;
    stats->rejected = 0;
  }
  return x;
}

void check_generators(const char* sampler, const torch::Tensor& x1,
                      const std::vector<torch::Generator>& generators) {
  if (!generators.empty() && static_cast<int64_t>(generators.size()) != x1.size(0)) {
    throw Error(fmt::format("sampler \"{}\": generators has {} entries, expected one per sample "
                            "(x1.size(0) = {}) or none",
                            sampler, generators.size(), x1.size(0)));
  }
}

torch::Tensor draw_noise(const torch::Tensor& x, const std::vector<torch::Generator>& gens) {
  if (gens.empty()) return torch::randn(x.sizes(), x.options());  // z: [B, ...]
  std::vector<torch::Tensor> rows;
  rows.reserve(gens.size());
  for (const auto& gen : gens) {
    // Draw on the generator's device in x's dtype, then move to x's device.
    rows.push_back(torch::randn(x.sizes().slice(1), gen, x.options().device(gen.device()))
                       .to(x.device()));  // row: [...]
  }
  return torch::stack(rows);  // z: [B, ...]
}

}  // namespace dit::samplers_detail
