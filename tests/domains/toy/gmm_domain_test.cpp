// The toy domain trained and sampled through the generic path (TokenDiT, FlowMatchingTrainer,
// the sampler registry, dit::generate) in seconds, its samples checked against the known
// mixture: mode weights, means and spreads within stated tolerances, per label.
#include <dit/domain.h>
#include <dit/flow.h>
#include <dit/train.h>
#include <gtest/gtest.h>

#include <iostream>

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

// A small randomly initialised network with non-zero adaLN and output layers (the zero init of
// adaLN-Zero would make every output 0).
std::shared_ptr<dit::TokenDiTImpl> random_net(uint64_t seed) {
  torch::manual_seed(seed);
  dit::TokenDiTConfig c;
  c.state_dim = 2, c.num_classes = 2, c.hidden_size = 32, c.depth = 2, c.num_heads = 2;
  auto net = std::make_shared<dit::TokenDiTImpl>(c);
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.normal_(0, 0.1);
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
  auto net = random_net(2);
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

// dit::flow_matching_loss is the training objective per row: on a randomly initialised network
// (non-zero weights) it equals |v(x_t, t) - (eps - x0)|^2 averaged over each row's real points,
// computed here with the module path (grad mode on, as the trainer runs it), within 1e-5
// relative; a row's loss does not depend on the padding of its batch or on the chunking; and
// mismatched shapes are refused.
TEST(FlowMatchingLoss, IsTheTrainingLossPerRow) {
  auto net = random_net(3);
  GmmDomain domain;
  auto inputs = domain.encode({CloudRequest{3, 0}, CloudRequest{8, 1}, CloudRequest{5, 0}});
  auto gen = dit::sample_generator(9, 0);
  auto x0 = at::randn({3, 8, 2}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  auto eps = at::randn({3, 8, 2}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  auto t = torch::tensor({0.2f, 0.5f, 0.9f});
  auto loss = dit::flow_matching_loss(*net, inputs, x0, eps, t);
  ASSERT_EQ(loss.sizes(), torch::IntArrayRef({3}));
  auto v = net->flow(dit::flow_interpolate(x0, eps, t), t, inputs).detach();  // the module path
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t n = inputs.mask[b].sum().item<int64_t>();
    const double expected = (v[b].narrow(0, 0, n) - (eps[b] - x0[b]).narrow(0, 0, n)).pow(2).mean().item<double>();
    EXPECT_NEAR(loss[b].item<double>(), expected, 1e-5 * expected) << "row " << b;
  }
  // Row 0 alone (3 points, no padding) and in chunks of one.
  dit::FlowInputs row0 = inputs.narrow(0, 1);
  row0.mask = torch::Tensor();  // every token real
  auto alone = dit::flow_matching_loss(*net, row0, x0.narrow(0, 0, 1).narrow(1, 0, 3).contiguous(),
                                       eps.narrow(0, 0, 1).narrow(1, 0, 3).contiguous(), t.narrow(0, 0, 1));
  EXPECT_NEAR(alone[0].item<double>(), loss[0].item<double>(), 1e-5 * loss[0].item<double>());
  auto chunked = dit::flow_matching_loss(*net, inputs, x0, eps, t, /*chunk=*/1);
  EXPECT_TRUE(torch::allclose(chunked, loss, 1e-5, 1e-7)) << chunked << loss;
  EXPECT_THROW(dit::flow_matching_loss(*net, inputs, x0, eps.narrow(1, 0, 4), t), dit::Error);
  EXPECT_THROW(dit::flow_matching_loss(*net, inputs, x0, eps, t.narrow(0, 0, 2)), dit::Error);
}

// Averaged over draws of (t, eps) shared by the rows, the trained network's loss tells sets
// from its mixture apart from sets it never saw: five points at the label's modes score well
// below the same points moved 4 away from every mode (measured: 1.49 vs 21.3, 64 draws), and
// below the same points under the other label's mixture (3.64).
TEST(FlowMatchingLoss, TrainedNetworkPrefersSetsFromItsMixture) {
  auto net = trained_net();
  GmmDomain domain;
  auto m = dit_toy::modes(0);
  auto on = torch::tensor({{m[0].x, m[0].y}, {m[1].x, m[1].y}, {m[2].x, m[2].y}, {m[0].x, m[0].y + 0.2},
                           {m[1].x - 0.2, m[1].y}}, torch::kFloat32);          // [5, 2]
  auto off = on + torch::tensor({4.0f, -4.0f});
  const int64_t K = 64;
  auto gen = dit::sample_generator(21, 0);
  auto inputs = domain.encode({CloudRequest{5, 0}, CloudRequest{5, 0}, CloudRequest{5, 1}}).repeat(K);
  auto x0 = torch::stack({on, off, on}).repeat({K, 1, 1});                      // draw-major rows
  auto eps = at::randn({K, 1, 5, 2}, gen, torch::TensorOptions().dtype(torch::kFloat32)).expand({K, 3, 5, 2}).reshape({3 * K, 5, 2});
  auto t = ((torch::arange(K).to(torch::kFloat32) + 0.5) / K).repeat_interleave(3);
  auto loss = dit::flow_matching_loss(*net, inputs, x0, eps, t).view({K, 3}).mean(0);
  std::cout << "loss: on the modes " << loss[0].item<double>() << ", moved " << loss[1].item<double>()
            << ", other label " << loss[2].item<double>() << "\n";
  EXPECT_LT(loss[0].item<double>(), 0.2 * loss[1].item<double>());
  EXPECT_LT(loss[0].item<double>(), 0.6 * loss[2].item<double>());
}

}  // namespace
