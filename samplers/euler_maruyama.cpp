// Euler-Maruyama for the reverse-time SDE whose marginals match the flow's, t: 1 -> 0.
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <cmath>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

// z ~ N(0, I) shaped like x [B, ...]. With per-sample generators row i is drawn from
// generators[i] alone, so a sample's noise does not depend on the batch it is in.
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

class EulerMaruyamaSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    samplers_detail::check_x1("euler-maruyama", x1);
    if (!opts.generators.empty() &&
        static_cast<int64_t>(opts.generators.size()) != x1.size(0)) {
      throw Error(fmt::format("sampler \"euler-maruyama\": generators has {} entries, expected "
                              "one per sample (x1.size(0) = {}) or none",
                              opts.generators.size(), x1.size(0)));
    }
    const double diffusion = opts.diffusion;
    if (!(diffusion >= 0.0) || !std::isfinite(diffusion)) {
      throw Error(fmt::format("sampler \"euler-maruyama\": diffusion = {}, expected a finite "
                              "number >= 0",
                              diffusion));
    }
    return samplers_detail::integrate_fixed(
        "euler-maruyama", v, std::move(x1), opts, progress, stats,
        [&opts, diffusion](const VelocityFn& f, const torch::Tensor& x, double t, double t_next,
                           int, int& nfe) {
          const double h = t - t_next;  // > 0: the step goes down in t
          const torch::Tensor vel = f(x, time_tensor(x, t));  // vel: [B, ...]
          nfe += 1;
          // Final step to t = 0: deterministic Euler (the noise would not be annealed).
          if (t_next == 0.0 || diffusion == 0.0) return x - vel * h;
          // Score from velocity (x_t = (1 - t) x0 + t eps, v = E[eps - x0 | x_t]; as in SiT,
          // Ma et al. 2024): E[eps | x_t] = x + (1 - t) v and s(x, t) = -(x + (1 - t) v) / t.
          // Reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6) for the family with the
          // same marginals, dx = [v - (g^2 / 2) s] dt + g dW, g(t)^2 = 2 D t, stepped by
          // Euler-Maruyama: x_{t-h} = x_t - h (v - (g^2 / 2) s) + g sqrt(h) z.
          // (g^2 / 2) s = D t s = -D (x + (1 - t) v): written without the 1/t.
          const torch::Tensor drift = vel + (x + vel * (1.0 - t)) * diffusion;  // v - g^2/2 s
          const double noise_scale = std::sqrt(2.0 * diffusion * t * h);  // g(t) sqrt(h)
          return x - drift * h + draw_noise(x, opts.generators) * noise_scale;
        });
  }
  int order() const override { return 0; }  // strong order 1/2: not a fixed-step ODE order
  bool stochastic() const override { return true; }
};

const bool registered = register_sampler(
    "euler-maruyama",
    "Euler-Maruyama on the reverse SDE (score from velocity), g^2 = 2 diffusion t; last step ODE",
    [] { return std::make_unique<EulerMaruyamaSampler>(); });

}  // namespace
}  // namespace dit
