// Multistep sampling with a flow map that jumps to data and re-noises: at each grid time t_i,
// x0_hat = x - t_i u(x, t_i, t_i) (one jump from t_i to 0), then x <- (1 - t_{i+1}) x0_hat +
// t_{i+1} eps with fresh noise eps (the multistep consistency sampler, Song et al. 2023,
// "Consistency Models", Algorithm 1, in the rectified-flow parameterisation). Stochastic: the
// noise comes from SampleOptions::generators (one per sample) when given.
#include <dit/error.h>
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class FlowMapRenoiseSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    if (!opts.flow_map)
      throw Error("sampler \"flowmap-renoise\" needs a step-conditioned (few-step) model, e.g. "
                  "one trained by `dit image distill`");
    if (!opts.generators.empty() && static_cast<int64_t>(opts.generators.size()) != x1.size(0))
      throw Error("sampler \"flowmap-renoise\": one generator per sample is required");
    const FlowMapFn& u = opts.flow_map;
    const auto& gens = opts.generators;
    return samplers_detail::integrate_fixed(
        "flowmap-renoise", v, std::move(x1), opts, progress, stats,
        [&u, &gens](const VelocityFn&, const torch::Tensor& x, double t, double t_next, int,
                    int& nfe) {
          nfe += 1;
          auto x0 = x - u(x, time_tensor(x, t), time_tensor(x, t)) * t;  // [B, ...]
          if (t_next <= 0) return x0;
          torch::Tensor eps;
          if (gens.empty()) {
            eps = torch::randn_like(x0);
          } else {
            std::vector<torch::Tensor> rows;
            for (int64_t i = 0; i < x0.size(0); ++i)
              rows.push_back(at::randn(x0[i].sizes(), gens[i], x0.options()));
            eps = torch::stack(rows);
          }
          return (1 - t_next) * x0 + t_next * eps;
        });
  }
  int order() const override { return 0; }
  bool stochastic() const override { return true; }
  bool uses_flow_map() const override { return true; }
};

const bool registered_flowmap_renoise = register_sampler(
    "flowmap-renoise",
    "few-step models: jump to t = 0 with the flow map, re-noise to the next time (consistency-"
    "model multistep), 1 NFE per step",
    [] { return std::make_unique<FlowMapRenoiseSampler>(); });

}  // namespace
}  // namespace dit
