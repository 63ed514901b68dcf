// One test body per op, run against every backend available on this machine
// (kernels::available_backends(): "reference", "cpu:avx512", "cpu:avx2", "cpu:scalar"; "cuda"
// once it exists), each compared with the reference computed in float64.
//
// Tolerances (fp32 backends): attention 1e-5 absolute on outputs of magnitude <= ~4 (inputs
// N(0, 1)); adaLN LayerNorm+modulate and gate+residual 1e-5 absolute relative to max(1, |out|).
#include <dit/error.h>
#include <dit/kernels.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

namespace k = dit::kernels;

constexpr double kAttentionTol = 1e-5;
constexpr double kAdaLNTol = 1e-5;

std::string test_name(std::string s) {
  for (auto& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class Backend : public ::testing::TestWithParam<std::string> {};

// The float64 reference of attention (the reference formulation run in double).
torch::Tensor attention64(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const k::AttentionOptions& opts) {
  return k::reference::attention(q.to(torch::kFloat64), k.to(torch::kFloat64),
                                 v.to(torch::kFloat64), opts);
}

enum class Mask { None, Half, Most };

// Grid: batch {1, 2} x heads {1, 3} x Nq, Nk in {1, 7, 64, 65, 257} x head dim
// {32, 64, 72, 96, 128} x mask {none, about half the keys, all but one or two keys}.
TEST_P(Backend, AttentionGridMatchesFloat64Reference) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths = {1, 7, 64, 65, 257};
  int cases = 0;
  double worst = 0;
  for (int64_t D : {32, 64, 72, 96, 128})
    for (int64_t B : {1, 2})
      for (int64_t H : {1, 3})
        for (int64_t Nq : lengths)
          for (int64_t Nk : lengths)
            for (Mask mk : {Mask::None, Mask::Half, Mask::Most}) {
              // The big sweeps on two head dims; the others on square shapes and Nq=1.
              if (D != 64 && D != 72 && Nq != Nk && Nq != 1) continue;
              if (mk != Mask::None && Nk == 1) continue;
              torch::manual_seed(1000 * D + 100 * B + 10 * H + Nq + 7 * Nk);
              auto q = torch::randn({B, H, Nq, D}), kk = torch::randn({B, H, Nk, D}),
                   v = torch::randn({B, H, Nk, D});
              k::AttentionOptions opts;
              if (mk == Mask::Half) {
                auto m = torch::rand({B, Nk}) < 0.5;
                m.select(1, 0).fill_(true);  // at least one kept key per row
                opts.key_mask = m;
              } else if (mk == Mask::Most) {
                auto m = torch::zeros({B, Nk}, torch::kBool);
                m.index_put_({0, Nk - 1}, true);  // batch 0: only the last key
                if (B > 1) {
                  m.index_put_({1, 0}, true);  // batch 1: the first and the middle key
                  m.index_put_({1, Nk / 2}, true);
                }
                opts.key_mask = m;
              }
              auto out = k::attention(q, kk, v, opts);
              auto expected = attention64(q, kk, v, opts);
              ASSERT_EQ(out.sizes(), expected.sizes());
              const double err = (out.to(torch::kFloat64) - expected).abs().max().item<double>();
              worst = std::max(worst, err);
              ASSERT_LT(err, kAttentionTol)
                  << GetParam() << " B" << B << " H" << H << " Nq" << Nq << " Nk" << Nk << " D" << D
                  << " mask " << static_cast<int>(mk);
              ++cases;
            }
  RecordProperty("cases", cases);
  RecordProperty("max_abs_err", std::to_string(worst));
}

TEST_P(Backend, AttentionTakesStridedViews) {
  // q, k, v as the DiT block makes them: views into one qkv projection [B, N, 3, H, Dh].
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const int64_t B = 2, N = 33, H = 3, D = 72;
  auto qkv = torch::randn({B, N, 3, H, D}).permute({2, 0, 3, 1, 4});  // [3, B, H, N, D]
  auto q = qkv[0], kk = qkv[1], v = qkv[2];
  ASSERT_FALSE(q.is_contiguous());
  auto out = k::attention(q, kk, v);
  EXPECT_LT((out.to(torch::kFloat64) - attention64(q, kk, v, {})).abs().max().item<double>(),
            kAttentionTol);
  // Head dim not unit-strided, and a custom scale.
  auto qt = torch::randn({B, H, D, N}).transpose(2, 3);
  k::AttentionOptions opts;
  opts.scale = 0.3;
  out = k::attention(qt, kk, v, opts);
  EXPECT_LT((out.to(torch::kFloat64) - attention64(qt, kk, v, opts)).abs().max().item<double>(),
            kAttentionTol);
}

TEST_P(Backend, AttentionMaskedKeysHaveNoInfluence) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  const int64_t B = 2, H = 2, N = 70, D = 64;
  auto q = torch::randn({B, H, N, D}), kk = torch::randn({B, H, N, D}),
       v = torch::randn({B, H, N, D});
  auto mask = torch::rand({B, N}) < 0.3;
  mask.select(1, 3).fill_(true);
  k::AttentionOptions opts;
  opts.key_mask = mask;
  auto out = k::attention(q, kk, v, opts);
  auto pad = mask.logical_not().view({B, 1, N, 1}).expand({B, H, N, D});
  kk = kk.masked_fill(pad, 1e3);
  v = v.masked_fill(pad, -1e3);
  EXPECT_LT((k::attention(q, kk, v, opts) - out).abs().max().item<float>(), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(All, Backend, ::testing::ValuesIn(k::available_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return test_name(info.param);
                         });

// adaLN: x [B, N, D]; shift, scale, gate as chunks of one [B, 6D] projection (row stride 6D).
TEST_P(Backend, AdaLNLayerNormModulateAndGateResidual) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  for (int64_t B : {1, 3})
    for (int64_t N : {1, 7, 256})
      for (int64_t D : {32, 35, 384}) {
        torch::manual_seed(B * 1000 + N * 10 + D);
        auto x = torch::randn({B, N, D}) * 3 + 1;
        auto mod = torch::randn({B, 6 * D}).chunk(6, 1);
        const auto &shift = mod[0], &scale = mod[1], &gate = mod[2];
        auto y = torch::randn({B, N, D});
        auto x64 = x.to(torch::kFloat64);
        auto mean = x64.mean(-1, true), var = x64.var(-1, /*unbiased=*/false, true);
        auto expected = (x64 - mean) / torch::sqrt(var + 1e-6) *
                            (1 + scale.to(torch::kFloat64).unsqueeze(1)) +
                        shift.to(torch::kFloat64).unsqueeze(1);
        auto out = k::adaln_layernorm(x, shift, scale);
        const double tol = kAdaLNTol * std::max(1.0, expected.abs().max().item<double>());
        EXPECT_LT((out.to(torch::kFloat64) - expected).abs().max().item<double>(), tol)
            << GetParam() << " B" << B << " N" << N << " D" << D;
        auto gr = k::gate_residual(x, gate, y);
        auto gr64 = x64 + gate.to(torch::kFloat64).unsqueeze(1) * y.to(torch::kFloat64);
        EXPECT_LT((gr.to(torch::kFloat64) - gr64).abs().max().item<double>(),
                  kAdaLNTol * std::max(1.0, gr64.abs().max().item<double>()))
            << GetParam() << " B" << B << " N" << N << " D" << D;
      }
}

// ---- dispatch rules ------------------------------------------------------------------------

TEST(KernelDispatch, BackendNamesAndScopes) {
  const auto names = k::available_backends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "reference");
  EXPECT_THROW(k::ScopedBackend("nonsense"), dit::Error);
  EXPECT_THROW(k::set_backend("cpu:nonsense"), dit::Error);
  auto q = torch::zeros({1, 2, 4, 64});
  const std::string before = k::backend();
  {
    k::ScopedBackend ref("reference");
    EXPECT_EQ(k::backend(), "reference");
    EXPECT_EQ(k::attention_backend(q), "reference");
    {
      k::ScopedBackend cpu("cpu");
      EXPECT_EQ(k::attention_backend(q), "cpu:" + k::cpu::best_isa());
    }
    EXPECT_EQ(k::attention_backend(q), "reference");
  }
  EXPECT_EQ(k::backend(), before);
}

TEST(KernelDispatch, AutogradKeepsTheReferencePath) {
  // The cpu backend has no backward: with grad mode on and an input that requires grad, every
  // selection runs the reference, and gradients flow.
  for (const auto& name : k::available_backends()) {
    k::ScopedBackend scoped(name);
    auto q = torch::randn({1, 2, 5, 32}, torch::requires_grad());
    auto kk = torch::randn({1, 2, 5, 32}), v = torch::randn({1, 2, 5, 32});
    EXPECT_EQ(k::attention_backend(q), "reference") << name;
    k::attention(q, kk, v).sum().backward();
    ASSERT_TRUE(q.grad().defined());
    EXPECT_GT(q.grad().abs().sum().item<float>(), 0.f);
    auto x = torch::randn({1, 3, 32}, torch::requires_grad());
    auto s = torch::randn({1, 32});
    k::gate_residual(x, s, k::adaln_layernorm(x, s, s)).sum().backward();
    EXPECT_TRUE(x.grad().defined());
  }
  // Without grad mode the fast path is used again.
  torch::NoGradGuard no_grad;
  auto q = torch::randn({1, 2, 5, 32}, torch::requires_grad());
  EXPECT_EQ(k::attention_backend(q), k::available_backends().back() == "reference"
                                         ? "reference"
                                         : "cpu:" + k::cpu::best_isa());
}

TEST(KernelDispatch, CpuBackendOnAllMaskedRowsGivesZero) {
  torch::NoGradGuard no_grad;
  for (const auto& isa : k::cpu::isas()) {
    k::ScopedBackend scoped("cpu:" + isa);
    auto q = torch::randn({2, 2, 9, 64}), kk = torch::randn({2, 2, 9, 64}),
         v = torch::randn({2, 2, 9, 64});
    auto mask = torch::ones({2, 9}, torch::kBool);
    mask[1].fill_(false);  // batch 1: every key masked
    k::AttentionOptions opts;
    opts.key_mask = mask;
    auto out = k::attention(q, kk, v, opts);
    EXPECT_EQ(out[1].abs().max().item<float>(), 0.f) << isa;
    EXPECT_LT((out[0] - k::reference::attention(q, kk, v, opts)[0]).abs().max().item<float>(),
              kAttentionTol)
        << isa;
  }
}

TEST(KernelDispatch, ForcedCpuRejectsOtherDtypes) {
  k::ScopedBackend scoped("cpu");
  auto q = torch::randn({1, 1, 4, 32}, torch::kFloat64);
  EXPECT_THROW(k::attention(q, q, q), dit::Error);
  k::ScopedBackend autos("auto");
  EXPECT_EQ(k::attention_backend(q), "reference");  // auto falls back
  EXPECT_NO_THROW(k::attention(q, q, q));
}

}  // namespace
