// Classical fourth-order Runge-Kutta for the flow ODE dx/dt = v(x, t), t: 1 -> 0.
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class Rk4Sampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    return samplers_detail::integrate_fixed(
        "rk4", v, std::move(x1), opts, progress, stats,
        [](const VelocityFn& f, const torch::Tensor& x, double t, double t_next, int, int& nfe) {
          // Classical RK4 (Kutta 1901; Hairer, Norsett & Wanner, Solving ODEs I, Sect. II.1:
          // c = (0, 1/2, 1/2, 1), a21 = a32 = 1/2, a43 = 1, b = (1/6, 1/3, 1/3, 1/6)):
          //   k1 = v(x, t)              k2 = v(x + h/2 k1, t + h/2)
          //   k3 = v(x + h/2 k2, t + h/2)   k4 = v(x + h k3, t + h)
          //   x_{n+1} = x_n + h/6 (k1 + 2 k2 + 2 k3 + k4).
          const double h = t_next - t;
          const double t_mid = t + 0.5 * h;
          const torch::Tensor k1 = f(x, time_tensor(x, t));  // k1: [B, ...]
          const torch::Tensor k2 = f(x + k1 * (0.5 * h), time_tensor(x, t_mid));
          const torch::Tensor k3 = f(x + k2 * (0.5 * h), time_tensor(x, t_mid));
          const torch::Tensor k4 = f(x + k3 * h, time_tensor(x, t_next));
          nfe += 4;
          return x + (k1 + (k2 + k3) * 2.0 + k4) * (h / 6.0);
        });
  }
  int order() const override { return 4; }
  int nfe_per_step() const override { return 4; }
};

const bool registered_rk4 = register_sampler(
    "rk4", "classical Runge-Kutta, order 4, 4 NFE per step",
    [] { return std::make_unique<Rk4Sampler>(); });

}  // namespace
}  // namespace dit
