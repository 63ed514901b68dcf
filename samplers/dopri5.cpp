// Dormand-Prince 5(4) with adaptive steps for the flow ODE dx/dt = v(x, t), t: 1 -> 0.
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "samplers/fixed_step.h"

namespace dit {
namespace {

// Butcher tableau of DOPRI5, RK5(4)7M (Dormand & Prince 1980, "A family of embedded
// Runge-Kutta formulae"; Hairer, Norsett & Wanner, Solving ODEs I, Sect. II.5, Table 5.2). Stage 7 is
// evaluated at the accepted 5th-order solution (a7j = b5_j), so it is the next step's k1
// (first same as last, FSAL).
constexpr double c2 = 1.0 / 5, c3 = 3.0 / 10, c4 = 4.0 / 5, c5 = 8.0 / 9;
constexpr double a21 = 1.0 / 5;
constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561,
                 a54 = -212.0 / 729;
constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247, a64 = 49.0 / 176,
                 a65 = -5103.0 / 18656;
// 5th-order weights b (b2 = b7 = 0); they are also row 7 of the tableau.
constexpr double b1 = 35.0 / 384, b3 = 500.0 / 1113, b4 = 125.0 / 192, b5 = -2187.0 / 6784,
                 b6 = 11.0 / 84;
// Embedded 4th-order weights b* (b*2 = 0).
constexpr double bs1 = 5179.0 / 57600, bs3 = 7571.0 / 16695, bs4 = 393.0 / 640,
                 bs5 = -92097.0 / 339200, bs6 = 187.0 / 2100, bs7 = 1.0 / 40;
// Error weights e = b - b*: err = h sum_i e_i k_i estimates the local error of the 4th-order
// solution (Hairer et al., Sect. II.4; local extrapolation: we continue with the 5th).
constexpr double e1 = b1 - bs1, e3 = b3 - bs3, e4 = b4 - bs4, e5 = b5 - bs5, e6 = b6 - bs6,
                 e7 = -bs7;

// Step-size controller (Hairer et al., Sect. II.4, "automatic step size control"): h_new = h * min(fac_max, max(fac_min,
// safety * err^(-1/(q+1)))) with q = 4 the lower of the pair's orders.
constexpr double kSafety = 0.9, kFacMin = 0.2, kFacMax = 10.0;
constexpr double kExponent = -1.0 / 5.0;

class Dopri5Sampler final : public Sampler {
 public:
  torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    samplers_detail::check_x1("dopri5", x1);
    if (opts.steps < 1) {
      throw Error(fmt::format("sampler \"dopri5\": steps = {}, expected an integer >= 1 (the "
                              "initial step is 1/steps)",
                              opts.steps));
    }
    if (!(opts.atol >= 0.0) || !(opts.rtol >= 0.0) || !(opts.atol + opts.rtol > 0.0)) {
      throw Error(fmt::format("sampler \"dopri5\": atol = {}, rtol = {}, expected both >= 0 "
                              "and at least one > 0",
                              opts.atol, opts.rtol));
    }
    if (opts.max_nfe < 7) {
      throw Error(fmt::format("sampler \"dopri5\": max_nfe = {}, expected >= 7 (one step)",
                              opts.max_nfe));
    }

    torch::Tensor x = std::move(x1);  // x: [B, ...]
    double t = 1.0;
    double h = -1.0 / opts.steps;  // signed step, t decreases
    int nfe = 0, accepted = 0, rejected = 0;
    auto eval = [&](const torch::Tensor& xs, double ts) {
      ++nfe;
      return v(xs, time_tensor(xs, ts));
    };

    torch::Tensor k1 = eval(x, t);  // k1: [B, ...]
    while (t > 0.0) {
      if (nfe + 6 > opts.max_nfe) {
        throw Error(fmt::format(
            "sampler \"dopri5\": max_nfe = {} exceeded at t = {:.6g} after {} accepted and {} "
            "rejected steps (atol = {:g}, rtol = {:g}); loosen atol/rtol or raise max_nfe",
            opts.max_nfe, t, accepted, rejected, opts.atol, opts.rtol));
      }
      const bool last = t + h <= 0.0;
      if (last) h = -t;  // land exactly on t = 0
      const double t_new = last ? 0.0 : t + h;
      if (!last && t_new == t) {
        throw Error(fmt::format("sampler \"dopri5\": step size underflow at t = {:.17g} "
                                "(h = {:g}); the velocity field is not smooth enough for "
                                "atol = {:g}, rtol = {:g}",
                                t, h, opts.atol, opts.rtol));
      }

      // Stages (Dormand & Prince 1980): k_i = v(x + h sum_j a_ij k_j, t + c_i h).
      const torch::Tensor k2 = eval(x + k1 * (h * a21), t + c2 * h);
      const torch::Tensor k3 = eval(x + (k1 * a31 + k2 * a32) * h, t + c3 * h);
      const torch::Tensor k4 = eval(x + (k1 * a41 + k2 * a42 + k3 * a43) * h, t + c4 * h);
      const torch::Tensor k5 =
          eval(x + (k1 * a51 + k2 * a52 + k3 * a53 + k4 * a54) * h, t + c5 * h);
      const torch::Tensor k6 =
          eval(x + (k1 * a61 + k2 * a62 + k3 * a63 + k4 * a64 + k5 * a65) * h, t_new);
      // 5th-order solution x_{n+1} = x_n + h sum_i b_i k_i.
      torch::Tensor x_new = x + (k1 * b1 + k3 * b3 + k4 * b4 + k5 * b5 + k6 * b6) * h;
      const torch::Tensor k7 = eval(x_new, t_new);  // FSAL: k1 of the next step
      const torch::Tensor err =
          (k1 * e1 + k3 * e3 + k4 * e4 + k5 * e5 + k6 * e6 + k7 * e7) * h;  // err: [B, ...]

      // Error norm (Hairer et al., Sect. II.4): RMS over all elements of
      // err / (atol + rtol max(|x_n|, |x_{n+1}|)).
      const torch::Tensor scale = torch::maximum(x.abs(), x_new.abs()) * opts.rtol + opts.atol;
      const double norm = (err / scale).square().mean().sqrt().item<double>();

      if (norm <= 1.0) {
        ++accepted;
        t = t_new;
        x = std::move(x_new);
        k1 = k7;
        if (opts.project) {
          opts.project(x, t);
          // The projection may move x: the FSAL stage no longer matches it.
          if (t > 0.0) k1 = eval(x, t);
        }
        progress.update(accepted, "");
        const double fac =
            norm == 0.0 ? kFacMax : std::clamp(kSafety * std::pow(norm, kExponent), kFacMin, kFacMax);
        h *= fac;
      } else {
        ++rejected;
        // After a rejection do not grow the step (Hairer et al., Sect. II.4, fac_max = 1);
        // a non-finite error (NaN/inf velocity) shrinks it by fac_min.
        const double fac = std::isfinite(norm)
                               ? std::clamp(kSafety * std::pow(norm, kExponent), kFacMin, 1.0)
                               : kFacMin;
        h *= fac;
      }
    }

    if (stats) {
      stats->nfe = nfe;
      stats->steps = accepted;
      stats->rejected = rejected;
    }
    return x;
  }
  int order() const override { return 5; }
  bool adaptive() const override { return true; }
};

const bool registered_dopri5 = register_sampler(
    "dopri5", "Dormand-Prince 5(4), adaptive steps (atol, rtol), FSAL",
    [] { return std::make_unique<Dopri5Sampler>(); });

}  // namespace
}  // namespace dit
