// Fixed-step ODE solvers against the exact solution of an analytic Gaussian flow.
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/samplers/analytic_flow.h"

namespace {

using dit::test::GaussianFlow;

GaussianFlow test_flow() { return GaussianFlow({2.0, -1.0, 0.5}, {0.5, 0.2, 1.0}); }

torch::Tensor test_noise() {
  torch::manual_seed(1234);
  return torch::randn({4, 3}, torch::kFloat64);  // x1: [B, D]
}

torch::Tensor solve(const std::string& sampler, const dit::VelocityFn& v, const torch::Tensor& x1,
                    int steps, const std::string& grid) {
  dit::SampleOptions opts;
  opts.steps = steps;
  opts.grid.name = grid;
  opts.grid.shift = 3.0;
  dit::Progress progress;
  return dit::make_sampler(sampler)->sample(v, x1, opts, progress);
}

struct OrderCase {
  std::string sampler;
  std::vector<int> steps;  // doubling
  std::string grid;
  double nominal;
  bool at_least = false;  // only require observed >= nominal - 0.3 (superconvergence)
};

void PrintTo(const OrderCase& c, std::ostream* os) { *os << c.sampler << "/" << c.grid; }

// Observed orders log2(e_N / e_2N) of max |x0 - reference| over successive doublings.
void check_orders(const OrderCase& c, const std::string& problem, const dit::VelocityFn& v,
                  const torch::Tensor& x1, const torch::Tensor& reference) {
  std::vector<double> errors;
  for (int steps : c.steps) {
    errors.push_back((solve(c.sampler, v, x1, steps, c.grid) - reference).abs().max().item<double>());
  }
  std::string report = fmt::format("{} / {} ({} grid):", problem, c.sampler, c.grid);
  for (size_t i = 0; i + 1 < errors.size(); ++i) {
    ASSERT_GT(errors[i + 1], 1e-11) << "error near roundoff level: use coarser grids";
    const double observed = std::log2(errors[i] / errors[i + 1]);
    report += fmt::format(" {}->{}: {:.2e}->{:.2e} p={:.3f};", c.steps[i], c.steps[i + 1],
                          errors[i], errors[i + 1], observed);
    if (c.at_least) {
      EXPECT_GE(observed, c.nominal - 0.3) << c.sampler << " " << c.steps[i] << "->" << c.steps[i + 1];
    } else {
      EXPECT_NEAR(observed, c.nominal, 0.3) << c.sampler << " " << c.steps[i] << "->" << c.steps[i + 1];
    }
  }
  std::printf("[ order    ] %s\n", report.c_str());
}

std::string case_name(const ::testing::TestParamInfo<OrderCase>& info) {
  return info.param.sampler + "_" + info.param.grid;
}

// (1a) Gaussian data: the exact solution x0 = mu + s x1 is known. On this field the global h^2
// error term of the midpoint rule vanishes (measured order 3.00 on fine grids, every dim), so
// midpoint is only required to reach at least order 2 here; (1b) measures its order 2.
class GaussianOrder : public ::testing::TestWithParam<OrderCase> {};

TEST_P(GaussianOrder, ErrorVsExactSolutionShrinksAtNominalOrder) {
  const GaussianFlow flow = test_flow();
  const torch::Tensor x1 = test_noise();
  check_orders(GetParam(), "gaussian", flow.fn(), x1, flow.exact_x0(x1));
}

INSTANTIATE_TEST_SUITE_P(
    Samplers, GaussianOrder,
    ::testing::Values(OrderCase{"euler", {8, 16, 32}, "uniform", 1},
                      OrderCase{"euler", {8, 16, 32}, "shifted", 1},
                      OrderCase{"heun", {32, 64, 128}, "uniform", 2},
                      OrderCase{"heun", {32, 64, 128}, "shifted", 2},
                      OrderCase{"midpoint", {8, 16, 32}, "uniform", 2, true},
                      OrderCase{"midpoint", {8, 16, 32}, "shifted", 2, true},
                      OrderCase{"rk4", {64, 128, 256}, "uniform", 4},
                      OrderCase{"rk4", {64, 128, 256}, "shifted", 4}),
    case_name);

// (1b) Gaussian-mixture data: a nonlinear field with curved trajectories where every solver
// shows its nominal order. Reference: dopri5 at atol = rtol = 1e-13, checked against rk4 with
// 2048 steps.
dit::test::GaussianMixtureFlow mixture_flow() {
  return dit::test::GaussianMixtureFlow({0.3, 0.7}, {-1.5, 1.0}, {0.3, 0.6});
}

class MixtureOrder : public ::testing::TestWithParam<OrderCase> {};

TEST_P(MixtureOrder, ErrorVsReferenceShrinksAtNominalOrder) {
  const auto flow = mixture_flow();
  const torch::Tensor x1 = test_noise();
  static const torch::Tensor reference = [&] {
    dit::SampleOptions opts;
    opts.atol = opts.rtol = 1e-13;
    opts.max_nfe = 1000000;
    dit::Progress progress;
    const torch::Tensor ref = dit::make_sampler("dopri5")->sample(flow.fn(), x1, opts, progress);
    const torch::Tensor rk4 = solve("rk4", flow.fn(), x1, 2048, "uniform");
    EXPECT_LT((ref - rk4).abs().max().item<double>(), 1e-11) << "reference solutions disagree";
    return ref;
  }();
  check_orders(GetParam(), "mixture", flow.fn(), x1, reference);
}

INSTANTIATE_TEST_SUITE_P(
    Samplers, MixtureOrder,
    ::testing::Values(OrderCase{"euler", {32, 64, 128}, "uniform", 1},
                      OrderCase{"euler", {32, 64, 128}, "shifted", 1},
                      OrderCase{"heun", {32, 64, 128}, "uniform", 2},
                      OrderCase{"heun", {32, 64, 128}, "shifted", 2},
                      OrderCase{"midpoint", {32, 64, 128}, "uniform", 2},
                      OrderCase{"midpoint", {32, 64, 128}, "shifted", 2},
                      OrderCase{"rk4", {32, 64, 128}, "uniform", 4},
                      OrderCase{"rk4", {32, 64, 128}, "shifted", 4}),
    case_name);

TEST(FixedStep, StatsAndProgress) {
  const struct {
    const char* name;
    int nfe_per_step;
  } cases[] = {{"euler", 1}, {"heun", 2}, {"midpoint", 2}, {"rk4", 4}, {"euler-maruyama", 1}};
  const GaussianFlow flow = test_flow();
  for (const auto& c : cases) {
    dit::SampleOptions opts;
    opts.steps = 7;
    int calls = 0;
    const dit::VelocityFn counted = [&](const torch::Tensor& x, const torch::Tensor& t) {
      ++calls;
      EXPECT_EQ(t.sizes(), torch::IntArrayRef({x.size(0)}));
      return flow.velocity(x, t);
    };
    dit::Progress progress;
    dit::SampleStats stats;
    stats.rejected = 99;
    dit::make_sampler(c.name)->sample(counted, test_noise(), opts, progress, &stats);
    EXPECT_EQ(stats.nfe, c.nfe_per_step * 7) << c.name;
    EXPECT_EQ(calls, stats.nfe) << c.name;
    EXPECT_EQ(stats.steps, 7) << c.name;
    EXPECT_EQ(stats.rejected, 0) << c.name;
    EXPECT_EQ(progress.done(), 7) << c.name;
  }
}

TEST(FixedStep, ProjectCalledOncePerStepWithGridTimes) {
  const GaussianFlow flow = test_flow();
  for (const char* name : {"euler", "heun", "midpoint", "rk4", "euler-maruyama"}) {
    dit::SampleOptions opts;
    opts.steps = 6;
    opts.grid.name = "shifted";
    std::vector<double> seen;
    opts.project = [&](torch::Tensor& x, double t) {
      seen.push_back(t);
      x.zero_();  // in-place modification must be what the next step sees
    };
    dit::Progress progress;
    int nonzero_inputs = 0;
    const dit::VelocityFn v = [&](const torch::Tensor& x, const torch::Tensor& t) {
      if (!seen.empty() && x.abs().sum().item<double>() != 0.0) ++nonzero_inputs;
      return torch::zeros_like(x);
    };
    const torch::Tensor x0 = dit::make_sampler(name)->sample(v, test_noise(), opts, progress);
    const auto expected = dit::make_time_grid(opts.grid)->times(6);
    ASSERT_EQ(seen.size(), 6u) << name;
    for (int i = 0; i < 6; ++i) EXPECT_EQ(seen[i], expected[i + 1]) << name;
    EXPECT_EQ(x0.abs().sum().item<double>(), 0.0) << name;
    if (std::string(name) != "euler-maruyama") {
      EXPECT_EQ(nonzero_inputs, 0) << name;
    }
  }
}

TEST(FixedStep, BadInputsThrow) {
  const GaussianFlow flow = test_flow();
  dit::Progress progress;
  dit::SampleOptions opts;
  opts.steps = 0;
  EXPECT_THROW(dit::make_sampler("euler")->sample(flow.fn(), test_noise(), opts, progress),
               dit::Error);
  opts.steps = 4;
  EXPECT_THROW(dit::make_sampler("rk4")->sample(flow.fn(), torch::zeros({2, 3}, torch::kLong),
                                                opts, progress),
               dit::Error);
  opts.grid.name = "nope";
  EXPECT_THROW(dit::make_sampler("heun")->sample(flow.fn(), test_noise(), opts, progress),
               dit::Error);
}

}  // namespace
