// Dormand-Prince 5(4) against the exact solution of an analytic Gaussian flow.
#include <dit/error.h>
#include <dit/sampler.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/samplers/analytic_flow.h"

namespace {

using dit::test::GaussianFlow;

GaussianFlow dopri5_flow() { return GaussianFlow({2.0, -1.0, 0.5}, {0.5, 0.2, 1.0}); }

torch::Tensor dopri5_noise() {
  torch::manual_seed(99);
  return torch::randn({8, 3}, torch::kFloat64);  // x1: [B, D]
}

TEST(Dopri5, MeetsToleranceAndNfeGrowsAsItTightens) {
  const GaussianFlow flow = dopri5_flow();
  const torch::Tensor x1 = dopri5_noise();
  const torch::Tensor exact = flow.exact_x0(x1);
  int previous_nfe = 0;
  for (double tol : {1e-4, 1e-6, 1e-8}) {
    dit::SampleOptions opts;
    opts.atol = opts.rtol = tol;
    opts.steps = 10;
    dit::Progress progress;
    dit::SampleStats stats;
    const torch::Tensor x0 =
        dit::make_sampler("dopri5")->sample(flow.fn(), x1, opts, progress, &stats);
    // Error within 10x the per-element tolerance atol + rtol |x|.
    const torch::Tensor bound = (exact.abs() * tol + tol) * 10.0;
    const double worst = ((x0 - exact).abs() / bound).max().item<double>();
    const double max_err = (x0 - exact).abs().max().item<double>();
    std::printf("[ dopri5   ] tol %.0e: max error %.3e (%.3f of 10x bound), nfe %d, "
                "accepted %d, rejected %d\n",
                tol, max_err, worst, stats.nfe, stats.steps, stats.rejected);
    EXPECT_LE(worst, 1.0) << "tol " << tol;
    EXPECT_GT(stats.nfe, 0);
    EXPECT_GT(stats.steps, 0);
    EXPECT_EQ(stats.nfe, 1 + 6 * (stats.steps + stats.rejected)) << "FSAL: 6 new stages a step";
    EXPECT_GT(stats.nfe, previous_nfe) << "tol " << tol;
    EXPECT_EQ(progress.done(), stats.steps);
    previous_nfe = stats.nfe;
  }
}

TEST(Dopri5, RejectsATooLargeInitialStep) {
  // One initial step spanning [1, 0] with a tight tolerance must be rejected and shrunk.
  const GaussianFlow flow = dopri5_flow();
  dit::SampleOptions opts;
  opts.steps = 1;
  opts.atol = opts.rtol = 1e-9;
  dit::Progress progress;
  dit::SampleStats stats;
  const torch::Tensor x1 = dopri5_noise();
  const torch::Tensor x0 = dit::make_sampler("dopri5")->sample(flow.fn(), x1, opts, progress, &stats);
  EXPECT_GT(stats.rejected, 0);
  EXPECT_LT((x0 - flow.exact_x0(x1)).abs().max().item<double>(), 1e-6);
}

TEST(Dopri5, ThrowsWhenMaxNfeExceeded) {
  const GaussianFlow flow = dopri5_flow();
  dit::SampleOptions opts;
  opts.atol = opts.rtol = 1e-10;
  opts.max_nfe = 20;
  dit::Progress progress;
  try {
    dit::make_sampler("dopri5")->sample(flow.fn(), dopri5_noise(), opts, progress);
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_nfe"), std::string::npos) << e.what();
  }
}

TEST(Dopri5, ProjectCalledOncePerAcceptedStepEndingAtZero) {
  const GaussianFlow flow = dopri5_flow();
  dit::SampleOptions opts;
  opts.atol = opts.rtol = 1e-6;
  std::vector<double> seen;
  opts.project = [&](torch::Tensor&, double t) { seen.push_back(t); };
  dit::Progress progress;
  dit::SampleStats stats;
  dit::make_sampler("dopri5")->sample(flow.fn(), dopri5_noise(), opts, progress, &stats);
  ASSERT_EQ(static_cast<int>(seen.size()), stats.steps);
  EXPECT_EQ(seen.back(), 0.0);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i], seen[i - 1]);
}

TEST(Dopri5, BadTolerancesThrow) {
  const GaussianFlow flow = dopri5_flow();
  dit::Progress progress;
  dit::SampleOptions opts;
  opts.atol = opts.rtol = 0.0;
  EXPECT_THROW(dit::make_sampler("dopri5")->sample(flow.fn(), dopri5_noise(), opts, progress),
               dit::Error);
}

}  // namespace
