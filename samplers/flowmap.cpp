// Few-step sampling with a step-conditioned model's flow map: on the time grid 1 = t_0 > ... >
// t_K = 0, x_{t_{i+1}} = x_{t_i} - d_i u(x_{t_i}, t_i, d_i) with d_i = t_i - t_{i+1}.
// This is the shortcut-model sampler (Frans et al. 2024, "One Step Diffusion via Shortcut
// Models", Algorithm 2: x_{t+d} = x_t + s(x_t, t, d) d in their time direction) and the
// deterministic (DDIM) step of a progressive-distillation student (Salimans & Ho 2022, eq. 8,
// written for the velocity parameterisation). With d = 0 it would be Euler.
#include <dit/error.h>
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class FlowMapSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    if (!opts.flow_map)
      throw Error("sampler \"flowmap\" needs a step-conditioned (few-step) model, e.g. one "
                  "trained by `dit image distill`");
    const FlowMapFn& u = opts.flow_map;
    return samplers_detail::integrate_fixed(
        "flowmap", v, std::move(x1), opts, progress, stats,
        [&u](const VelocityFn&, const torch::Tensor& x, double t, double t_next, int, int& nfe) {
          const double d = t - t_next;
          nfe += 1;
          return x - u(x, time_tensor(x, t), time_tensor(x, d)) * d;
        });
  }
  int order() const override { return 0; }
  bool uses_flow_map() const override { return true; }
};

const bool registered_flowmap = register_sampler(
    "flowmap", "few-step models: x <- x - d u(x, t, d) per step (shortcut / distilled), 1 NFE per step",
    [] { return std::make_unique<FlowMapSampler>(); });

}  // namespace
}  // namespace dit
