// kernels::attention and kernels::adaln_layernorm against independent formulations, with and
// without a key-padding mask. Tolerance: fp32, 1e-5 absolute.
#include <dit/error.h>
#include <dit/kernels.h>
#include <gtest/gtest.h>

namespace {

constexpr float kTol = 1e-5f;

struct Shape {
  int64_t B, H, Nq, Nk, D;
};

class AttentionShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionShapes, MatchesLibtorchScaledDotProduct) {
  auto s = GetParam();
  torch::manual_seed(1);
  auto q = torch::randn({s.B, s.H, s.Nq, s.D}), k = torch::randn({s.B, s.H, s.Nk, s.D}),
       v = torch::randn({s.B, s.H, s.Nk, s.D});
  auto out = dit::kernels::attention(q, k, v);
#if TORCH_VERSION_MAJOR >= 2
  auto expected = at::scaled_dot_product_attention(q, k, v);
#else
  auto expected = std::get<0>(at::_scaled_dot_product_attention(q, k, v));
#endif
  EXPECT_EQ(out.sizes(), expected.sizes());
  EXPECT_LT((out - expected).abs().max().item<float>(), kTol);
}

TEST_P(AttentionShapes, MaskedKeysHaveNoInfluence) {
  auto s = GetParam();
  if (s.Nk < 2) GTEST_SKIP() << "needs a key to mask";
  torch::manual_seed(2);
  auto q = torch::randn({s.B, s.H, s.Nq, s.D}), k = torch::randn({s.B, s.H, s.Nk, s.D}),
       v = torch::randn({s.B, s.H, s.Nk, s.D});
  const int64_t keep = s.Nk / 2 + 1;
  auto mask = torch::zeros({s.B, s.Nk}, torch::kBool);
  mask.narrow(1, 0, keep).fill_(true);
  dit::kernels::AttentionOptions opts;
  opts.key_mask = mask;
  auto masked = dit::kernels::attention(q, k, v, opts);
  // Same as attention over the kept keys only.
  auto trimmed = dit::kernels::attention(q, k.narrow(2, 0, keep), v.narrow(2, 0, keep));
  EXPECT_LT((masked - trimmed).abs().max().item<float>(), kTol);
  // Changing padded keys/values changes nothing.
  k.narrow(2, keep, s.Nk - keep).normal_(0, 100);
  v.narrow(2, keep, s.Nk - keep).normal_(0, 100);
  EXPECT_LT((dit::kernels::attention(q, k, v, opts) - masked).abs().max().item<float>(), kTol);
}

INSTANTIATE_TEST_SUITE_P(Grid, AttentionShapes,
                         ::testing::Values(Shape{1, 1, 1, 1, 32}, Shape{2, 3, 17, 17, 64},
                                           Shape{1, 2, 49, 49, 72}, Shape{2, 1, 5, 33, 96},
                                           Shape{1, 2, 64, 64, 128}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           const auto& s = info.param;
                           return "B" + std::to_string(s.B) + "H" + std::to_string(s.H) + "Nq" +
                                  std::to_string(s.Nq) + "Nk" + std::to_string(s.Nk) + "D" +
                                  std::to_string(s.D);
                         });

TEST(Attention, RejectsMismatchedShapes) {
  auto q = torch::randn({1, 2, 4, 8});
  EXPECT_THROW(dit::kernels::attention(q, torch::randn({1, 2, 4, 16}), torch::randn({1, 2, 4, 16})),
               dit::Error);
  dit::kernels::AttentionOptions opts;
  opts.key_mask = torch::ones({1, 5}, torch::kBool);
  EXPECT_THROW(dit::kernels::attention(q, q, q, opts), dit::Error);
  EXPECT_THROW(dit::kernels::attention(q.view({2, 4, 8}), q, q), dit::Error);
}

TEST(AdaLN, LayerNormThenModulate) {
  torch::manual_seed(3);
  auto x = torch::randn({2, 7, 48}) * 3 + 1;
  auto shift = torch::randn({2, 48}), scale = torch::randn({2, 48});
  auto out = dit::kernels::adaln_layernorm(x, shift, scale);
  auto mean = x.mean(-1, true), var = x.var(-1, /*unbiased=*/false, true);
  auto expected = (x - mean) / torch::sqrt(var + 1e-6) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
  EXPECT_LT((out - expected).abs().max().item<float>(), kTol);
}

}  // namespace
