// Heun's method (explicit trapezoid, RK2) for the flow ODE dx/dt = v(x, t), t: 1 -> 0.
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class HeunSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    return samplers_detail::integrate_fixed(
        "heun", v, std::move(x1), opts, progress, stats,
        [](const VelocityFn& f, const torch::Tensor& x, double t, double t_next, int, int& nfe) {
          // Heun / explicit trapezoid (Hairer, Norsett & Wanner, Solving ODEs I, Sect. II.1:
          // tableau c = (0, 1), a21 = 1, b = (1/2, 1/2); Karras et al. 2022, Alg. 1):
          //   k1 = v(x_n, t_n),  k2 = v(x_n + h k1, t_{n+1}),  x_{n+1} = x_n + h/2 (k1 + k2).
          // Unlike EDM's Alg. 1 the last step to t = 0 is also the 2-evaluation trapezoid, so
          // the order holds on every step and NFE = 2 * steps.
          const double h = t_next - t;
          const torch::Tensor k1 = f(x, time_tensor(x, t));  // k1: [B, ...]
          const torch::Tensor x_pred = x + k1 * h;
          const torch::Tensor k2 = f(x_pred, time_tensor(x, t_next));
          nfe += 2;
          return x + (k1 + k2) * (0.5 * h);
        });
  }
  int order() const override { return 2; }
  int nfe_per_step() const override { return 2; }
};

const bool registered_heun = register_sampler(
    "heun", "Heun (explicit trapezoid), order 2, 2 NFE per step",
    [] { return std::make_unique<HeunSampler>(); });

}  // namespace
}  // namespace dit
