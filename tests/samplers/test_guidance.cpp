// Classifier-free guidance wrapper against hand-computed combinations of a fake model.
#include <dit/error.h>
#include <dit/guidance.h>
#include <gtest/gtest.h>

#include <vector>

namespace {

constexpr int64_t kNull = 10;

// A fake conditional model: a different smooth function of (x, t) per label, recording the
// batch size of each call.
struct FakeModel {
  std::vector<int64_t> batch_sizes;

  static torch::Tensor eval(const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& y) {
    // x: [B, C, H], t: [B], y: [B]
    const auto shape = std::vector<int64_t>{-1, 1, 1};
    const torch::Tensor yf = y.to(x.scalar_type()).reshape(shape);
    const torch::Tensor tf = t.reshape(shape);
    const torch::Tensor ramp = torch::arange(x.size(1), x.options()).reshape({1, -1, 1});
    return torch::sin(x * (1.0 + 0.1 * yf)) * (1.0 + tf) + yf * 0.3 * ramp - (yf == kNull) * 0.7;
  }

  dit::ConditionalVelocityFn fn() {
    return [this](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
      batch_sizes.push_back(x.size(0));
      EXPECT_EQ(t.size(0), x.size(0));
      EXPECT_EQ(y.size(0), x.size(0));
      return eval(x, t, y);
    };
  }
};

struct Inputs {
  torch::Tensor x, t, y;
};

Inputs inputs(double t = 0.5) {
  torch::manual_seed(3);
  Inputs in;
  in.x = torch::randn({3, 4, 5}, torch::kFloat64);  // [B, C, H]
  in.t = torch::full({3}, t, torch::kFloat64);
  in.y = torch::tensor(std::vector<int64_t>{1, 4, 7});
  return in;
}

torch::Tensor v_cond(const Inputs& in) { return FakeModel::eval(in.x, in.t, in.y); }
torch::Tensor v_uncond(const Inputs& in) {
  return FakeModel::eval(in.x, in.t, torch::full_like(in.y, kNull));
}

TEST(ClassifierFreeGuidance, ScaleOneIsConditionalInOneBatch) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 1.0;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  const torch::Tensor out = v(in.x, in.t);
  EXPECT_TRUE(torch::equal(out, v_cond(in)));
  EXPECT_EQ(model.batch_sizes, std::vector<int64_t>{3});
}

TEST(ClassifierFreeGuidance, ScaleMatchesHandComputedInOneBatchOfTwoB) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 2.5;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  const torch::Tensor out = v(in.x, in.t);
  const torch::Tensor vc = v_cond(in), vu = v_uncond(in);
  const torch::Tensor expected = vu + 2.5 * (vc - vu);
  EXPECT_TRUE(torch::allclose(out, expected, 1e-13, 1e-13));
  EXPECT_EQ(model.batch_sizes, std::vector<int64_t>{6});
}

TEST(ClassifierFreeGuidance, OutsideIntervalIsConditionalOnly) {
  FakeModel model;
  dit::GuidanceOptions opts;
  opts.scale = 4.0;
  opts.t_lo = 0.2;
  opts.t_hi = 0.7;
  const Inputs in0 = inputs(0.1);
  const auto v = dit::classifier_free_guidance(model.fn(), in0.y, kNull, opts);
  for (double t : {0.1, 0.9, 1.0}) {
    const Inputs in = inputs(t);
    EXPECT_TRUE(torch::equal(v(in.x, in.t), v_cond(in))) << "t " << t;
  }
  EXPECT_EQ(model.batch_sizes, (std::vector<int64_t>{3, 3, 3}));
  // Inside (endpoints included): guided.
  for (double t : {0.2, 0.45, 0.7}) {
    const Inputs in = inputs(t);
    const torch::Tensor vc = v_cond(in), vu = v_uncond(in);
    EXPECT_TRUE(torch::allclose(v(in.x, in.t), vu + 4.0 * (vc - vu), 1e-13, 1e-13)) << "t " << t;
  }
  EXPECT_EQ(model.batch_sizes, (std::vector<int64_t>{3, 3, 3, 6, 6, 6}));
}

TEST(ClassifierFreeGuidance, GuidedChannelsLeaveTheRestConditional) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 3.0;
  opts.guided_channels = 2;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  const torch::Tensor out = v(in.x, in.t);  // [3, 4, 5]
  const torch::Tensor vc = v_cond(in), vu = v_uncond(in);
  ASSERT_EQ(out.sizes(), vc.sizes());
  EXPECT_TRUE(torch::allclose(out.narrow(1, 0, 2),
                              vu.narrow(1, 0, 2) + 3.0 * (vc.narrow(1, 0, 2) - vu.narrow(1, 0, 2)),
                              1e-13, 1e-13));
  EXPECT_TRUE(torch::equal(out.narrow(1, 2, 2), vc.narrow(1, 2, 2)));
  // More guided channels than the model has: an error naming the field.
  opts.guided_channels = 9;
  const auto bad = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  EXPECT_THROW(bad(in.x, in.t), dit::Error);
}

TEST(ClassifierFreeGuidance, RescaleOneMatchesConditionalStdPerSample) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 5.0;
  opts.rescale = 1.0;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  const torch::Tensor out = v(in.x, in.t);
  const torch::Tensor vc = v_cond(in), vu = v_uncond(in);
  const torch::Tensor cfg = vu + 5.0 * (vc - vu);
  const std::vector<int64_t> dims{1, 2};
  EXPECT_TRUE(torch::allclose(out.std(dims), vc.std(dims), 1e-12, 1e-12));
  // The direction is v_cfg's: out = v_cfg * (std(v_c) / std(v_cfg)) per sample.
  const torch::Tensor ratio = (vc.std(dims) / cfg.std(dims)).reshape({-1, 1, 1});
  EXPECT_TRUE(torch::allclose(out, cfg * ratio, 1e-12, 1e-12));
  EXPECT_FALSE(torch::allclose(out.std(dims), cfg.std(dims), 1e-3, 1e-3));

  // phi = 0.3 blends: 0.3 v_resc + 0.7 v_cfg.
  opts.rescale = 0.3;
  const auto v_blend = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  EXPECT_TRUE(torch::allclose(v_blend(in.x, in.t), 0.3 * cfg * ratio + 0.7 * cfg, 1e-12, 1e-12));
}

TEST(ClassifierFreeGuidance, RescaleActsOnGuidedChannelsOnly) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 5.0;
  opts.rescale = 1.0;
  opts.guided_channels = 3;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  const torch::Tensor out = v(in.x, in.t);
  const torch::Tensor vc = v_cond(in);
  const std::vector<int64_t> dims{1, 2};
  EXPECT_TRUE(torch::allclose(out.narrow(1, 0, 3).std(dims), vc.narrow(1, 0, 3).std(dims),
                              1e-12, 1e-12));
  EXPECT_TRUE(torch::equal(out.narrow(1, 3, 1), vc.narrow(1, 3, 1)));
}

TEST(ClassifierFreeGuidance, BadOptionsThrow) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.rescale = 1.5;
  EXPECT_THROW(dit::classifier_free_guidance(model.fn(), in.y, kNull, opts), dit::Error);
  opts = {};
  opts.t_lo = 0.8;
  opts.t_hi = 0.2;
  EXPECT_THROW(dit::classifier_free_guidance(model.fn(), in.y, kNull, opts), dit::Error);
  opts = {};
  opts.scale = 2.0;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  EXPECT_THROW(v(torch::randn({2, 4, 5}, torch::kFloat64), torch::full({2}, 0.5, torch::kFloat64)),
               dit::Error);
}

TEST(ClassifierFreeGuidance, DrivesASampler) {
  FakeModel model;
  const Inputs in = inputs();
  dit::GuidanceOptions opts;
  opts.scale = 2.0;
  opts.t_hi = 0.5;
  const auto v = dit::classifier_free_guidance(model.fn(), in.y, kNull, opts);
  dit::SampleOptions sopts;
  sopts.steps = 4;  // t = 1, 0.75 unguided; 0.5, 0.25 guided
  dit::Progress progress;
  dit::SampleStats stats;
  dit::make_sampler("euler")->sample(v, in.x, sopts, progress, &stats);
  EXPECT_EQ(stats.nfe, 4);
  EXPECT_EQ(model.batch_sizes, (std::vector<int64_t>{3, 3, 6, 6}));
}

}  // namespace
