// Euler-Maruyama for the reverse-time SDE whose marginals match the flow's, t: 1 -> 0.
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <cmath>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class EulerMaruyamaSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    samplers_detail::check_x1("euler-maruyama", x1);
    samplers_detail::check_generators("euler-maruyama", x1, opts.generators);
    const double diffusion = opts.diffusion;
    if (!(diffusion >= 0.0) || !std::isfinite(diffusion)) {
      throw Error(fmt::format("sampler \"euler-maruyama\": diffusion = {}, expected a finite "
                              "number >= 0",
                              diffusion));
    }
    const double eta = opts.noise_scale;
    if (!(eta >= 0.0) || !std::isfinite(eta))
      throw Error(fmt::format("sampler \"euler-maruyama\": noise_scale = {}, expected a finite number >= 0", eta));
    return samplers_detail::integrate_fixed(
        "euler-maruyama", v, std::move(x1), opts, progress, stats,
        [&opts, diffusion, eta](const VelocityFn& f, const torch::Tensor& x, double t, double t_next,
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
          const double noise_scale = eta * std::sqrt(2.0 * diffusion * t * h);  // eta g(t) sqrt(h)
          return x - drift * h + samplers_detail::draw_noise(x, opts.generators) * noise_scale;
        });
  }
  int order() const override { return 0; }  // strong order 1/2: not a fixed-step ODE order
  bool stochastic() const override { return true; }
};

const bool registered_euler_maruyama = register_sampler(
    "euler-maruyama",
    "Euler-Maruyama on the reverse SDE (score from velocity), g^2 = 2 diffusion t; last step ODE",
    [] { return std::make_unique<EulerMaruyamaSampler>(); });

}  // namespace
}  // namespace dit
