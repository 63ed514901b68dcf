// Explicit Euler for the flow ODE dx/dt = v(x, t), integrated from t = 1 to t = 0.
#include <dit/sampler.h>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

class EulerSampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    return samplers_detail::integrate_fixed(
        "euler", v, std::move(x1), opts, progress, stats,
        [](const VelocityFn& f, const torch::Tensor& x, double t, double t_next, int, int& nfe) {
          // x_{n+1} = x_n + h v(x_n, t_n), h = t_{n+1} - t_n < 0 (explicit Euler; Hairer,
          // Norsett & Wanner, Solving ODEs I, Sect. II.1; the rectified-flow sampler of Liu
          // et al. 2023).
          const double h = t_next - t;
          const torch::Tensor k1 = f(x, time_tensor(x, t));  // k1: [B, ...]
          nfe += 1;
          return x + k1 * h;
        });
  }
  int order() const override { return 1; }
};

const bool registered_euler = register_sampler(
    "euler", "explicit Euler, order 1, 1 NFE per step",
    [] { return std::make_unique<EulerSampler>(); });

}  // namespace
}  // namespace dit
