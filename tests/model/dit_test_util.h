#pragma once
// Shared helpers of the DiT model tests: fixture paths, the configs written by
// tests/reference/make_dit_fixtures.py, error comparison, temporary files.
#include <dit/error.h>
#include <dit/model.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <dit/fs.h>
#include <functional>
#include <initializer_list>
#include <string>

namespace dit_test {

inline std::string fixture(const std::string& name) {
  return std::string(DIT_TEST_FIXTURES) + "/" + name;
}

// The fixture configs, as CONFIGS in tests/reference/make_dit_fixtures.py.
struct FixtureCase {
  std::string name;
  dit::DiTConfig config;
  std::string weights() const { return fixture("dit_" + name + "_weights.safetensors"); }
  std::string io() const { return fixture("dit_" + name + "_io.safetensors"); }
};

inline dit::DiTConfig make_config(int64_t input, int64_t patch, int64_t channels, int64_t hidden,
                                  int64_t depth, int64_t heads, int64_t classes,
                                  bool learn_sigma) {
  dit::DiTConfig c;
  c.input_size = input, c.patch_size = patch, c.in_channels = channels, c.hidden_size = hidden;
  c.depth = depth, c.num_heads = heads, c.mlp_ratio = 4.0, c.num_classes = classes;
  c.learn_sigma = learn_sigma;
  return c;
}

inline std::vector<FixtureCase> fixture_cases() {
  return {{"tiny", make_config(8, 2, 4, 64, 2, 4, 10, true)},
          {"fmnist_small", make_config(28, 4, 1, 96, 3, 3, 10, false)}};
}

inline void expect_same_config(const dit::DiTConfig& a, const dit::DiTConfig& b) {
  EXPECT_EQ(a.input_size, b.input_size);
  EXPECT_EQ(a.patch_size, b.patch_size);
  EXPECT_EQ(a.in_channels, b.in_channels);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_DOUBLE_EQ(a.mlp_ratio, b.mlp_ratio);
  EXPECT_EQ(a.num_classes, b.num_classes);
  EXPECT_EQ(a.learn_sigma, b.learn_sigma);
  EXPECT_EQ(a.describe(), b.describe());
}

// Error of `got` against `ref`: max |got - ref|, and the max relative error over elements
// with |ref| >= rel_floor (relative error of near-zero elements says nothing).
struct Diff {
  double max_abs = 0, max_rel = 0, max_ref = 0;
};
constexpr double kRelFloor = 1e-2;

inline Diff compare(const torch::Tensor& got, const torch::Tensor& ref) {
  EXPECT_EQ(got.sizes(), ref.sizes());
  auto g = got.to(torch::kFloat64), r = ref.to(torch::kFloat64);
  auto err = (g - r).abs();
  Diff d;
  d.max_abs = err.max().item<double>();
  d.max_ref = r.abs().max().item<double>();
  auto big = r.abs() >= kRelFloor;
  d.max_rel = big.any().item<bool>()
                  ? (err.masked_select(big) / r.abs().masked_select(big)).max().item<double>()
                  : 0.0;
  return d;
}

// Expects `fn` to throw dit::Error whose message contains every one of `needles`.
inline void expect_error(const std::function<void()>& fn,
                         std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected dit::Error";
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected dit::Error, got another exception: " << e.what();
  }
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("dit_model_test_") + (info ? info->name() : "x") + "_" +
                       std::to_string(::getpid());
    path_ = dit::fs::temp_directory_path() / name;
    dit::fs::remove_all(path_);
    dit::fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    dit::fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  dit::fs::path path_;
};

// Fills every parameter of a model with N(0, std^2) (non-zero adaLN, unlike the reference
// initialisation), leaving buffers (pos_embed) alone.
inline void randomize(torch::nn::Module& module, uint64_t seed, double std = 0.1) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : module.parameters()) p.normal_(0.0, std);
}

}  // namespace dit_test
