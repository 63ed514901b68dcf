// kernels::PackedLinear (include/dit/linear.h) against the float64 reference y = x W^T + b (and
// tanh-GELU of it). Tolerances: fp32 1e-5 relative to max(1, |y|) (fp32 sums of K <= 1536
// products of N(0, 1/K)-scaled weights); bf16 1.5e-2 relative to max |y| (inputs and weights
// rounded to 8 mantissa bits: ~2^-9 each, ~4e-3 measured per layer), with the error really
// present (> 1e-4: it did run in bf16).
#include <dit/error.h>
#include <dit/linear.h>
#include <gtest/gtest.h>

namespace {

namespace k = dit::kernels;

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, bool gelu) {
  auto y = torch::addmm(b.to(torch::kFloat64), x.to(torch::kFloat64), w.to(torch::kFloat64).t());
  return gelu ? at::gelu(y, "tanh") : y;
}

double rel_err(const torch::Tensor& out, const torch::Tensor& ref, bool floor_one) {
  const double scale = ref.abs().max().item<double>();
  return (out.to(torch::kFloat64) - ref).abs().max().item<double>() /
         (floor_one ? std::max(1.0, scale) : scale);
}

TEST(PackedLinear, Float32MatchesReferenceAtDiTShapes) {
  if (!k::PackedLinear::available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(1);
  // (M, K, N): DiT-S/2 qkv / fc1 / fc2 at batch 1, odd sizes, M = 1 and a tiny layer.
  for (auto [M, K, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {256, 384, 1152}, {256, 384, 1536}, {256, 1536, 384}, {37, 35, 19}, {1, 64, 8}, {7, 3, 5}}) {
    auto w = torch::randn({N, K}) / std::sqrt(double(K)), b = torch::randn({N}) * 0.1;
    auto x = torch::randn({M, K});
    for (bool gelu : {false, true}) {
      k::PackedLinear lin(w, b, k::LinearPrecision::kFloat32,
                          gelu ? k::LinearActivation::kGeluTanh : k::LinearActivation::kNone);
      auto out = torch::full({M, N}, std::nan(""));
      lin.run(x, out);
      EXPECT_LT(rel_err(out, reference(x, w, b, gelu), true), 1e-5) << M << "x" << K << "x" << N << " gelu " << gelu;
      // A second call of the same shape reuses the cached primitive and gives the same bits.
      auto again = torch::empty({M, N});
      lin.run(x, again);
      EXPECT_TRUE(torch::equal(out, again));
    }
  }
}

TEST(PackedLinear, StridedRowsAndManyBatchSizes) {
  if (!k::PackedLinear::available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(2);
  const int64_t K = 72, N = 40;
  auto w = torch::randn({N, K}) / std::sqrt(double(K)), b = torch::randn({N});
  k::PackedLinear lin(w, b, k::LinearPrecision::kFloat32);
  for (int64_t M : {1, 2, 5, 64, 65}) {
    auto wide = torch::randn({M, K + 9});
    auto x = wide.narrow(1, 3, K);  // row stride K + 9
    auto out_wide = torch::zeros({M, N + 4});
    auto out = out_wide.narrow(1, 2, N);
    lin.run(x, out);
    EXPECT_LT(rel_err(out, reference(x, w, b, false), true), 1e-5) << "M " << M;
    EXPECT_EQ(out_wide.narrow(1, 0, 2).abs().max().item<float>(), 0.f) << "wrote outside out";
  }
}

TEST(PackedLinear, BF16StaysWithinRounding) {
  if (!k::PackedLinear::available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(3);
  const int64_t M = 96, K = 384, N = 1536;
  auto w = torch::randn({N, K}) / std::sqrt(double(K)), b = torch::randn({N}) * 0.1;
  auto x = torch::randn({M, K});
  for (bool gelu : {false, true}) {
    k::PackedLinear lin(w, b, k::LinearPrecision::kBF16,
                        gelu ? k::LinearActivation::kGeluTanh : k::LinearActivation::kNone);
    auto ref = reference(x, w, b, gelu);
    auto out32 = torch::empty({M, N});
    lin.run(x, out32);  // float32 in (converted inside), float32 out
    auto outbf = torch::empty({M, N}, torch::kBFloat16);
    lin.run(x.to(torch::kBFloat16), outbf);  // bf16 in, bf16 out (fc1 -> fc2 on the bf16 path)
    for (const auto& out : {out32, outbf}) {
      const double e = rel_err(out, ref, false);
      EXPECT_LT(e, 1.5e-2) << "gelu " << gelu;
      EXPECT_GT(e, 1e-4) << "gelu " << gelu << ": no bf16 rounding seen";
    }
  }
}

TEST(PackedLinear, RejectsWrongShapesAndTypes) {
  if (!k::PackedLinear::available()) GTEST_SKIP() << "built without oneDNN";
  auto w = torch::randn({8, 4}), b = torch::randn({8});
  EXPECT_THROW(k::PackedLinear(w, torch::randn({7}), k::LinearPrecision::kFloat32), dit::Error);
  EXPECT_THROW(k::PackedLinear(w.to(torch::kFloat64), b, k::LinearPrecision::kFloat32), dit::Error);
  k::PackedLinear lin(w, b, k::LinearPrecision::kFloat32);
  EXPECT_THROW(lin.run(torch::randn({3, 5}), torch::empty({3, 8})), dit::Error);      // K
  EXPECT_THROW(lin.run(torch::randn({3, 4}), torch::empty({2, 8})), dit::Error);      // M
  EXPECT_THROW(lin.run(torch::randn({4, 3}).t(), torch::empty({3, 8})), dit::Error);  // column stride
  EXPECT_THROW(lin.run(torch::randn({3, 4}), torch::empty({3, 8}, torch::kBFloat16)), dit::Error);
  EXPECT_THROW(k::parse_linear_precision("fp16", "--precision"), dit::Error);
  EXPECT_EQ(k::parse_linear_precision("bf16", "x"), k::LinearPrecision::kBF16);
}

}  // namespace
