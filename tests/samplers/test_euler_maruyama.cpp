// Euler-Maruyama on the reverse SDE: distribution, determinism, batch independence.
#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tests/samplers/analytic_flow.h"

namespace {

using dit::test::GaussianFlow;

std::vector<torch::Generator> generators(uint64_t seed, int64_t first, int64_t count) {
  std::vector<torch::Generator> gens;
  for (int64_t i = first; i < first + count; ++i) gens.push_back(dit::sample_generator(seed, i));
  return gens;
}

TEST(EulerMaruyama, ReproducesDataMeanAndStd) {
  const GaussianFlow flow({2.0, -1.0}, {0.5, 0.2});
  const int64_t n = 20000;
  torch::manual_seed(7);
  const torch::Tensor x1 = torch::randn({n, 2}, torch::kFloat64);  // x1: [n, D]
  dit::SampleOptions opts;
  opts.steps = 200;
  opts.diffusion = 1.0;
  dit::Progress progress;
  dit::SampleStats stats;
  const torch::Tensor x0 =
      dit::make_sampler("euler-maruyama")->sample(flow.fn(), x1, opts, progress, &stats);
  EXPECT_EQ(stats.nfe, 200);
  const torch::Tensor mean = x0.mean(0), sd = x0.std(0);
  for (int64_t d = 0; d < 2; ++d) {
    const double mu = flow.mu[d].item<double>(), s = flow.s[d].item<double>();
    const double se_mean = s / std::sqrt(static_cast<double>(n));
    const double se_std = s / std::sqrt(2.0 * (n - 1));
    const double m = mean[d].item<double>(), sdv = sd[d].item<double>();
    std::printf("[ em       ] dim %lld: mean %.5f (mu %.2f, %.2f se), std %.5f (s %.2f, %.2f se)\n",
                static_cast<long long>(d), m, mu, (m - mu) / se_mean, sdv, s,
                (sdv - s) / se_std);
    EXPECT_NEAR(m, mu, 4.0 * se_mean) << "dim " << d;
    EXPECT_NEAR(sdv, s, 4.0 * se_std) << "dim " << d;
  }
  // The noise matters: the SDE sample is not the ODE solution mu + s x1.
  EXPECT_GT((x0 - flow.exact_x0(x1)).abs().mean().item<double>(), 0.05);
}

TEST(EulerMaruyama, SameGeneratorsAreBitIdentical) {
  const GaussianFlow flow({2.0, -1.0, 0.5}, {0.5, 0.2, 1.0});
  const torch::Tensor x1 = dit::sample_noise(42, 0, 6, {3});  // x1: [6, 3]
  dit::SampleOptions opts;
  opts.steps = 20;
  dit::Progress progress;
  const auto sampler = dit::make_sampler("euler-maruyama");
  opts.generators = generators(42, 0, 6);
  const torch::Tensor a = sampler->sample(flow.fn(), x1.to(torch::kFloat64), opts, progress);
  opts.generators = generators(42, 0, 6);
  const torch::Tensor b = sampler->sample(flow.fn(), x1.to(torch::kFloat64), opts, progress);
  EXPECT_TRUE(torch::equal(a, b));
  opts.generators = generators(43, 0, 6);
  const torch::Tensor c = sampler->sample(flow.fn(), x1.to(torch::kFloat64), opts, progress);
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(EulerMaruyama, SampleDoesNotDependOnItsBatch) {
  const GaussianFlow flow({2.0, -1.0, 0.5}, {0.5, 0.2, 1.0});
  const torch::Tensor x1 = torch::randn({5, 3}, torch::kFloat64);
  dit::SampleOptions opts;
  opts.steps = 25;
  dit::Progress progress;
  const auto sampler = dit::make_sampler("euler-maruyama");
  opts.generators = generators(5, 0, 5);
  const torch::Tensor batch = sampler->sample(flow.fn(), x1, opts, progress);  // [5, 3]
  for (int64_t i = 0; i < 5; ++i) {
    opts.generators = generators(5, i, 1);
    const torch::Tensor alone = sampler->sample(flow.fn(), x1.narrow(0, i, 1), opts, progress);
    EXPECT_TRUE(torch::equal(alone[0], batch[i])) << "sample " << i;
  }
  // A shard [2, 5) equals rows 2..4 of the full batch.
  opts.generators = generators(5, 2, 3);
  const torch::Tensor shard = sampler->sample(flow.fn(), x1.narrow(0, 2, 3), opts, progress);
  EXPECT_TRUE(torch::equal(shard, batch.narrow(0, 2, 3)));
}

TEST(EulerMaruyama, ZeroDiffusionIsEuler) {
  const GaussianFlow flow({2.0, -1.0, 0.5}, {0.5, 0.2, 1.0});
  const torch::Tensor x1 = torch::randn({4, 3}, torch::kFloat64);
  dit::SampleOptions opts;
  opts.steps = 12;
  opts.diffusion = 0.0;
  dit::Progress progress;
  const torch::Tensor em = dit::make_sampler("euler-maruyama")->sample(flow.fn(), x1, opts, progress);
  const torch::Tensor eu = dit::make_sampler("euler")->sample(flow.fn(), x1, opts, progress);
  EXPECT_TRUE(torch::allclose(em, eu, 1e-14, 1e-14));
}

TEST(EulerMaruyama, GeneratorCountMustMatchBatch) {
  const GaussianFlow flow({2.0}, {0.5});
  dit::SampleOptions opts;
  opts.steps = 4;
  opts.generators = generators(1, 0, 3);
  dit::Progress progress;
  EXPECT_THROW(dit::make_sampler("euler-maruyama")
                   ->sample(flow.fn(), torch::randn({2, 1}, torch::kFloat64), opts, progress),
               dit::Error);
}

}  // namespace
