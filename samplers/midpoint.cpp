// Explicit midpoint method (RK2) for the flow ODE dx/dt = v(x, t), t: 1 -> 0.
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class MidpointSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    return samplers_detail::integrate_fixed(
        "midpoint", v, std::move(x1), opts, progress, stats,
        [](const VelocityFn& f, const torch::Tensor& x, double t, double t_next, int, int& nfe) {
          // Explicit midpoint rule (Runge 1895; Hairer, Norsett & Wanner, Solving ODEs I,
          // Sect. II.1: tableau c = (0, 1/2), a21 = 1/2, b = (0, 1)):
          //   k1 = v(x_n, t_n),  k2 = v(x_n + h/2 k1, t_n + h/2),  x_{n+1} = x_n + h k2.
          const double h = t_next - t;
          const torch::Tensor k1 = f(x, time_tensor(x, t));  // k1: [B, ...]
          const torch::Tensor k2 = f(x + k1 * (0.5 * h), time_tensor(x, t + 0.5 * h));
          nfe += 2;
          return x + k2 * h;
        });
  }
  int order() const override { return 2; }
  int nfe_per_step() const override { return 2; }
};

const bool registered_midpoint = register_sampler(
    "midpoint", "explicit midpoint, order 2, 2 NFE per step",
    [] { return std::make_unique<MidpointSampler>(); });

}  // namespace
}  // namespace dit
