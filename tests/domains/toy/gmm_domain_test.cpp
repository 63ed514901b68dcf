// The toy domain trained and sampled through the generic path (TokenDiT, FlowMatchingTrainer,
// the sampler registry, dit::generate) in seconds, its samples checked against the known
// mixture: mode weights, means and spreads within stated tolerances, per label.
#include <dit/domain.h>
#include <dit/train.h>
#include <gtest/gtest.h>

#include "tests/domains/toy/gmm_domain.h"

namespace {

using dit_toy::CloudRequest;
using dit_toy::GmmDomain;

dit::FlowNet trained_net() {
  static dit::FlowNet net = [] {
    dit::set_threads(1);  // a tiny network: thread hand-offs would cost more than they save
    torch::manual_seed(0);
    dit::TokenDiTConfig c;
    c.state_dim = 2, c.token_features = 0, c.num_classes = 2;
    c.hidden_size = 64, c.depth = 2, c.num_heads = 4;
    dit::TrainOptions o;
    o.steps = 500, o.batch_size = 128, o.lr = 3e-3, o.warmup_steps = 50, o.ema_decay = 0.995;
    o.label_dropout = 0.1, o.seed = 7;
    dit::FlowMatchingTrainer trainer(std::make_shared<dit::TokenDiTImpl>(c),
                                     std::make_shared<dit_toy::GmmData>(4000, 11), o);
    double first = 0, last = 0;
    for (int64_t s = 0; s < o.steps; ++s) {
      const double loss = trainer.step();
      if (s < 50) first += loss / 50;
      if (s >= o.steps - 50) last += loss / 50;
    }
    EXPECT_LT(last, 0.8 * first) << "loss did not fall: first 50 steps " << first << ", last 50 " << last;
    return trainer.ema_net();
  }();
  return net;
}

std::vector<CloudRequest> requests(int64_t count, int64_t label) {
  std::vector<CloudRequest> r;
  for (int64_t i = 0; i < count; ++i) r.push_back({dit_toy::kMinPoints + i % 6, label});
  return r;
}

TEST(ToyDomain, RegisteredByName) {
  auto domain = dit::make_domain("gmm");
  EXPECT_EQ(domain->name(), "gmm");
  bool listed = false;
  for (auto& [name, description] : dit::list_domains()) listed |= name == "gmm";
  EXPECT_TRUE(listed);
  EXPECT_THROW(dit::make_domain("no-such-domain"), dit::Error);
}

// Per label: assign every sampled point to its nearest mode; weights within 0.06, means within
// 0.2, per-axis spread within 35% of sigma (0.35). 300 sets of 3..8 points: about 1,650 points
// per label, so the sampling error of a weight is about 0.012 and of a mean about 0.015.
TEST(ToyDomain, SamplesMatchTheKnownMixture) {
  auto net = trained_net();
  GmmDomain domain;
  dit::FlowSampling sampling;
  sampling.sampler = "heun";
  sampling.options.steps = 20;
  sampling.seed = 3;
  sampling.chunk = 100;
  for (int64_t label : {0, 1}) {
    dit::Progress silent;
    auto samples = dit::generate(domain, *net, requests(300, label), sampling, silent, 1000 * label);
    ASSERT_EQ(samples.size(), 300u);
    std::vector<torch::Tensor> points;
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto& s = samples[i];
      ASSERT_TRUE(s.finite) << "sample " << s.index;
      EXPECT_EQ(s.structure.points.size(0), dit_toy::kMinPoints + static_cast<int64_t>(i) % 6);
      EXPECT_TRUE(s.checks.valid()) << "sample " << s.index << " max_radius "
                                    << s.checks.find("max_radius")->value;
      points.push_back(s.structure.points);
    }
    auto all = torch::cat(points);  // [P, 2]
    auto m = dit_toy::modes(label);
    auto centers = torch::tensor({m[0].x, m[0].y, m[1].x, m[1].y, m[2].x, m[2].y}, torch::kFloat32).view({3, 2});
    auto nearest = torch::cdist(all, centers).argmin(1);
    for (int k = 0; k < 3; ++k) {
      auto in_mode = all.index_select(0, (nearest == k).nonzero().squeeze(1));
      const double weight = static_cast<double>(in_mode.size(0)) / all.size(0);
      EXPECT_NEAR(weight, m[k].weight, 0.06) << "label " << label << " mode " << k;
      ASSERT_GT(in_mode.size(0), 10);
      auto mean = in_mode.mean(0), sd = in_mode.std(0);
      EXPECT_NEAR(mean[0].item<double>(), m[k].x, 0.2) << "label " << label << " mode " << k;
      EXPECT_NEAR(mean[1].item<double>(), m[k].y, 0.2) << "label " << label << " mode " << k;
      for (int a = 0; a < 2; ++a)
        EXPECT_NEAR(sd[a].item<double>(), m[k].sigma, 0.35 * m[k].sigma)
            << "label " << label << " mode " << k << " axis " << a;
    }
  }
}

// A set's sample depends on its (seed, index) only, not on the padding of its batch.
// (A randomly initialised network with non-zero adaLN and output layers, so that attention
// over the padded batch matters.)
TEST(ToyDomain, SampleDoesNotDependOnItsBatch) {
  torch::manual_seed(2);
  dit::TokenDiTConfig c;
  c.state_dim = 2, c.num_classes = 2, c.hidden_size = 32, c.depth = 2, c.num_heads = 2;
  auto net = std::make_shared<dit::TokenDiTImpl>(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.normal_(0, 0.1);
  }
  GmmDomain domain;
  dit::FlowSampling sampling;
  sampling.options.steps = 8;
  sampling.seed = 5;
  dit::Progress silent;
  auto alone = dit::generate(domain, *net, {CloudRequest{3, 0}}, sampling, silent, 0);
  auto padded = dit::generate(domain, *net, {CloudRequest{3, 0}, CloudRequest{8, 1}}, sampling, silent, 0);
  ASSERT_EQ(alone[0].structure.points.sizes(), padded[0].structure.points.sizes());
  EXPECT_TRUE(torch::allclose(alone[0].structure.points, padded[0].structure.points, 1e-4, 1e-4))
      << alone[0].structure.points << padded[0].structure.points;
}

// The untrained network (zero output at initialisation: adaLN-Zero) leaves the noise as it is,
// so the same checks fail the mixture: the test above can fail.
TEST(ToyDomain, UntrainedNetworkDoesNotMatchTheMixture) {
  torch::manual_seed(1);
  dit::TokenDiTConfig c;
  c.state_dim = 2, c.num_classes = 2, c.hidden_size = 32, c.depth = 1, c.num_heads = 2;
  dit::TokenDiT net(c);
  GmmDomain domain;
  dit::FlowSampling sampling;
  sampling.options.steps = 4;
  dit::Progress silent;
  auto samples = dit::generate(domain, *net, requests(200, 0), sampling, silent, 0);
  std::vector<torch::Tensor> points;
  for (auto& s : samples) points.push_back(s.structure.points);
  auto all = torch::cat(points);
  // N(0, I) noise: the mixture's left mode (weight 0.5 at x = -2) gets far less than half.
  const double left = (all.select(1, 0) < -1).to(torch::kFloat64).mean().item<double>();
  EXPECT_LT(left, 0.3);
}

}  // namespace
