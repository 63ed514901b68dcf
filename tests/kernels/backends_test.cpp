// One test body per op, run against every backend available on this machine
// (kernels::available_backends(): "reference", "cpu:avx512", "cpu:avx2", "cpu:scalar", and
// "cuda" in CUDA builds with a GPU), each compared with the reference computed in float64 on the
// same (rounded) inputs.
//
// Tolerances: fp32 attention 1e-5 absolute on outputs of magnitude <= ~4 (inputs N(0, 1));
// adaLN LayerNorm+modulate and gate+residual 1e-5 relative to max(1, |out|). The cuda backend
// runs its dtypes on the GPU: bf16 2e-2 and fp16 5e-3 relative to max(1, |out|) (fp32
// accumulation; the outputs are rounded to 8 and 11 mantissa bits).
#include <dit/error.h>
#include <dit/kernels.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/backends.h"

namespace {

namespace k = dit::kernels;

constexpr double kAttentionTol = 1e-5;
constexpr double kAdaLNTol = 1e-5;

// Where a backend's inputs live, in which dtype, and how close it must come.
struct Target {
  torch::Device device;
  torch::ScalarType dtype;
  double tol;     // attention: absolute for fp32, else times max(1, |out|); adaLN: times max(1, |out|)
  const char* name;
};

std::vector<Target> attention_targets(const std::string& backend) {
  if (backend == "cuda")
    return {{torch::kCUDA, torch::kBFloat16, 2e-2, "bf16"}, {torch::kCUDA, torch::kFloat16, 5e-3, "fp16"}};
  return {{torch::kCPU, torch::kFloat32, kAttentionTol, "fp32"}};
}

std::vector<Target> adaln_targets(const std::string& backend) {
  if (backend == "cuda")
    return {{torch::kCUDA, torch::kFloat32, kAdaLNTol, "fp32"},
            {torch::kCUDA, torch::kBFloat16, 2e-2, "bf16"},
            {torch::kCUDA, torch::kFloat16, 5e-3, "fp16"}};
  return {{torch::kCPU, torch::kFloat32, kAdaLNTol, "fp32"}};
}

// The bound on |out - expected| for a target: fp32 attention absolute, the rest relative.
double bound(const Target& t, const torch::Tensor& expected) {
  if (t.dtype == torch::kFloat32) return t.tol;
  return t.tol * std::max(1.0, expected.abs().max().item<double>());
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64))
      .abs()
      .max()
      .item<double>();
}

std::string test_name(std::string s) {
  for (auto& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class Backend : public ::testing::TestWithParam<std::string> {};

// The float64 reference of attention (the reference formulation run in double).
torch::Tensor attention64(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const k::AttentionOptions& opts) {
  k::AttentionOptions cpu_opts = opts;
  if (opts.key_mask) cpu_opts.key_mask = opts.key_mask->cpu();
  return k::reference::attention(q.to(torch::kCPU, torch::kFloat64),
                                 k.to(torch::kCPU, torch::kFloat64),
                                 v.to(torch::kCPU, torch::kFloat64), cpu_opts);
}

enum class Mask { None, Half, Most };

// Grid: batch {1, 2} x heads {1, 3} x Nq, Nk in {1, 7, 64, 65, 257} x head dim
// {32, 64, 72, 96, 128} x mask {none, about half the keys, all but one or two keys}.
TEST_P(Backend, AttentionGridMatchesFloat64Reference) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths = {1, 7, 64, 65, 257};
  for (const Target& target : attention_targets(GetParam())) {
    int cases = 0;
    double worst = 0;
    for (int64_t D : {32, 64, 72, 96, 128}) {
      if (target.dtype != torch::kFloat32 && D == 32) continue;  // no 16-bit kernel for D 32
      for (int64_t B : {1, 2})
        for (int64_t H : {1, 3})
          for (int64_t Nq : lengths)
            for (int64_t Nk : lengths)
              for (Mask mk : {Mask::None, Mask::Half, Mask::Most}) {
                // The big sweeps on two head dims; the others on square shapes and Nq=1.
                if (D != 64 && D != 72 && Nq != Nk && Nq != 1) continue;
                if (mk != Mask::None && Nk == 1) continue;
                torch::manual_seed(1000 * D + 100 * B + 10 * H + Nq + 7 * Nk);
                const auto on = torch::TensorOptions(target.device).dtype(target.dtype);
                auto q = torch::randn({B, H, Nq, D}).to(on), kk = torch::randn({B, H, Nk, D}).to(on),
                     v = torch::randn({B, H, Nk, D}).to(on);
                k::AttentionOptions opts;
                if (mk == Mask::Half) {
                  auto m = torch::rand({B, Nk}) < 0.5;
                  m.select(1, 0).fill_(true);  // at least one kept key per row
                  opts.key_mask = m.to(target.device);
                } else if (mk == Mask::Most) {
                  auto m = torch::zeros({B, Nk}, torch::kBool);
                  m.index_put_({0, Nk - 1}, true);  // batch 0: only the last key
                  if (B > 1) {
                    m.index_put_({1, 0}, true);  // batch 1: the first and the middle key
                    m.index_put_({1, Nk / 2}, true);
                  }
                  opts.key_mask = m.to(target.device);
                }
                auto out = k::attention(q, kk, v, opts);
                auto expected = attention64(q, kk, v, opts);
                ASSERT_EQ(out.sizes(), expected.sizes());
                ASSERT_EQ(out.scalar_type(), target.dtype);
                const double err = max_abs_diff(out, expected);
                worst = std::max(worst, err);
                ASSERT_LT(err, bound(target, expected))
                    << GetParam() << " " << target.name << " B" << B << " H" << H << " Nq" << Nq
                    << " Nk" << Nk << " D" << D << " mask " << static_cast<int>(mk);
                ++cases;
              }
    }
    RecordProperty(std::string("cases_") + target.name, cases);
    RecordProperty(std::string("max_abs_err_") + target.name, std::to_string(worst));
  }
}

TEST_P(Backend, AttentionTakesStridedViews) {
  // q, k, v as the DiT block makes them: views into one qkv projection [B, N, 3, H, Dh].
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  for (const Target& target : attention_targets(GetParam())) {
    torch::manual_seed(5);
    const auto on = torch::TensorOptions(target.device).dtype(target.dtype);
    const int64_t B = 2, N = 33, H = 3, D = 72;
    auto qkv = torch::randn({B, N, 3, H, D}).to(on).permute({2, 0, 3, 1, 4});  // [3, B, H, N, D]
    auto q = qkv[0], kk = qkv[1], v = qkv[2];
    ASSERT_FALSE(q.is_contiguous());
    auto out = k::attention(q, kk, v);
    auto expected = attention64(q, kk, v, {});
    EXPECT_LT(max_abs_diff(out, expected), bound(target, expected)) << target.name;
    // Head dim not unit-strided, and a custom scale.
    auto qt = torch::randn({B, H, D, N}).to(on).transpose(2, 3);
    k::AttentionOptions opts;
    opts.scale = 0.3;
    out = k::attention(qt, kk, v, opts);
    expected = attention64(qt, kk, v, opts);
    EXPECT_LT(max_abs_diff(out, expected), bound(target, expected)) << target.name;
  }
}

TEST_P(Backend, AttentionMaskedKeysHaveNoInfluence) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  for (const Target& target : attention_targets(GetParam())) {
    torch::manual_seed(6);
    const auto on = torch::TensorOptions(target.device).dtype(target.dtype);
    const int64_t B = 2, H = 2, N = 70, D = 64;
    auto q = torch::randn({B, H, N, D}).to(on), kk = torch::randn({B, H, N, D}).to(on),
         v = torch::randn({B, H, N, D}).to(on);
    auto mask = torch::rand({B, N}) < 0.3;
    mask.select(1, 3).fill_(true);
    k::AttentionOptions opts;
    opts.key_mask = mask.to(target.device);
    auto out = k::attention(q, kk, v, opts);
    auto pad = mask.logical_not().view({B, 1, N, 1}).expand({B, H, N, D}).to(target.device);
    kk = kk.masked_fill(pad, 1e3);
    v = v.masked_fill(pad, -1e3);
    EXPECT_LT(max_abs_diff(k::attention(q, kk, v, opts), out), 1e-6) << target.name;
  }
}

INSTANTIATE_TEST_SUITE_P(All, Backend, ::testing::ValuesIn(k::available_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return test_name(info.param);
                         });

// adaLN: x [B, N, D]; shift, scale, gate as chunks of one [B, 6D] projection (row stride 6D).
TEST_P(Backend, AdaLNLayerNormModulateAndGateResidual) {
  k::ScopedBackend scoped(GetParam());
  torch::NoGradGuard no_grad;
  for (const Target& target : adaln_targets(GetParam()))
    for (int64_t B : {1, 3})
      for (int64_t N : {1, 7, 256})
        for (int64_t D : {32, 35, 384}) {
          torch::manual_seed(B * 1000 + N * 10 + D);
          const auto on = torch::TensorOptions(target.device).dtype(target.dtype);
          auto x = (torch::randn({B, N, D}) * 3 + 1).to(on);
          auto mod = torch::randn({B, 6 * D}).to(on).chunk(6, 1);
          const auto &shift = mod[0], &scale = mod[1], &gate = mod[2];
          auto y = torch::randn({B, N, D}).to(on);
          auto f64 = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat64); };
          auto x64 = f64(x);
          auto mean = x64.mean(-1, true), var = x64.var(-1, /*unbiased=*/false, true);
          auto expected = (x64 - mean) / torch::sqrt(var + 1e-6) * (1 + f64(scale).unsqueeze(1)) +
                          f64(shift).unsqueeze(1);
          auto out = k::adaln_layernorm(x, shift, scale);
          EXPECT_LT(max_abs_diff(out, expected),
                    target.tol * std::max(1.0, expected.abs().max().item<double>()))
              << GetParam() << " " << target.name << " B" << B << " N" << N << " D" << D;
          auto gr = k::gate_residual(x, gate, y);
          auto gr64 = x64 + f64(gate).unsqueeze(1) * f64(y);
          EXPECT_LT(max_abs_diff(gr, gr64),
                    target.tol * std::max(1.0, gr64.abs().max().item<double>()))
              << GetParam() << " " << target.name << " B" << B << " N" << N << " D" << D;
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
  EXPECT_EQ(k::attention_backend(q), "cpu:" + k::cpu::best_isa());
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

TEST(KernelDispatch, CudaBackendRules) {
#ifndef DIT_HAVE_CUDA_BACKEND
  EXPECT_THROW(k::ScopedBackend("cuda"), dit::Error);  // not a backend of this build
  GTEST_SKIP() << "built against a CPU-only torch: no cuda backend";
#else
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU";
  torch::NoGradGuard no_grad;
  auto cpu_q = torch::randn({1, 2, 8, 64});
  auto q32 = cpu_q.cuda(), q16 = q32.to(torch::kBFloat16);
  auto q48 = torch::randn({1, 2, 8, 48}, torch::device(torch::kCUDA).dtype(torch::kBFloat16));
  // auto: bf16 attention on the kernels, what they do not take on the reference (on the GPU).
  EXPECT_EQ(k::attention_backend(q16), "cuda");
  EXPECT_EQ(k::attention_backend(q32), "reference");
  EXPECT_EQ(k::attention_backend(q48), "reference");
  EXPECT_TRUE(k::attention(q32, q32, q32).is_cuda());
  EXPECT_TRUE(k::attention(q48, q48, q48).is_cuda());
  {
    k::ScopedBackend cuda("cuda");  // by name: inputs it cannot take are errors
    EXPECT_EQ(k::attention_backend(q16), "cuda");
    EXPECT_THROW(k::attention(cpu_q, cpu_q, cpu_q), dit::Error);
    EXPECT_THROW(k::attention(q32, q32, q32), dit::Error);
    EXPECT_THROW(k::attention(q48, q48, q48), dit::Error);
  }
  k::ScopedBackend cpu("cpu");
  EXPECT_THROW(k::attention(q16, q16, q16), dit::Error);
#endif
}

}  // namespace
