// Time grids: 1 = t_0 > t_1 > ... > t_steps = 0 (t = 1 noise, t = 0 data).
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace dit {
namespace {

constexpr const char* kValidGrids = "\"uniform\", \"shifted\"";

void check_steps(const char* grid, int steps) {
  if (steps < 1) {
    throw Error(fmt::format("time grid \"{}\": steps = {}, expected an integer >= 1", grid, steps));
  }
}

// Uniform grid: t_i = 1 - i / steps. The endpoints are written exactly.
class UniformGrid final : public TimeGrid {
 public:
  std::vector<double> times(int steps) const override {
    check_steps("uniform", steps);
    std::vector<double> t(static_cast<size_t>(steps) + 1);
    for (int i = 0; i <= steps; ++i) t[i] = 1.0 - static_cast<double>(i) / steps;
    t.front() = 1.0;
    t.back() = 0.0;
    return t;
  }
};

// Shifted grid (SD3; Esser et al. 2024, "Scaling Rectified Flow Transformers", eq. 23):
// t' = s t / (1 + (s - 1) t) applied to the uniform grid. The map fixes 0 and 1 and is
// increasing for s > 0; s > 1 spends more steps near the noise end (t = 1).
class ShiftedGrid final : public TimeGrid {
 public:
  explicit ShiftedGrid(double shift) : shift_(shift) {}
  std::vector<double> times(int steps) const override {
    check_steps("shifted", steps);
    std::vector<double> t(static_cast<size_t>(steps) + 1);
    for (int i = 0; i <= steps; ++i) {
      const double u = 1.0 - static_cast<double>(i) / steps;
      t[i] = shift_ * u / (1.0 + (shift_ - 1.0) * u);
    }
    t.front() = 1.0;
    t.back() = 0.0;
    return t;
  }

 private:
  double shift_;
};

}  // namespace

std::unique_ptr<TimeGrid> make_time_grid(const TimeGridOptions& opts) {
  if (opts.name == "uniform") return std::make_unique<UniformGrid>();
  if (opts.name == "shifted") {
    if (!(opts.shift > 0.0) || !std::isfinite(opts.shift)) {
      throw Error(fmt::format("time grid \"shifted\": shift = {}, expected a finite number > 0",
                              opts.shift));
    }
    return std::make_unique<ShiftedGrid>(opts.shift);
  }
  throw Error(fmt::format("time grid: unknown name \"{}\", expected one of {}", opts.name,
                          kValidGrids));
}

}  // namespace dit
