// Parity of the DiT backbone with the reference PyTorch DiT (facebookresearch/DiT models.py),
// on randomised weights written by tests/reference/make_dit_fixtures.py:
//   - forward(x, t, y) against the reference output, fp32,
//   - classifier-free guidance (dit::classifier_free_guidance wrapping forward) against the
//     reference's cond/uncond batch of 2B combined in Python,
//   - the fixed sin-cos position table and the timestep frequencies.
#include <dit/guidance.h>
#include <dit/model.h>
#include <dit/safetensors.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tests/model/dit_test_util.h"

namespace {

using dit_test::compare;
using dit_test::Diff;
using dit_test::FixtureCase;

// fp32 tolerances against the PyTorch reference. The C++ model runs the same float32 ops in
// a different order (reference attention kernel, fused layer norm), so only rounding differs:
// outputs are O(1) (|out| <= ~7.3), and the observed errors are ~1e-6.
constexpr double kAbsTol = 1e-5;
constexpr double kRelTol = 1e-4;  // over elements with |ref| >= dit_test::kRelFloor

void report(const std::string& what, const Diff& d) {
  std::printf("[ parity  ] %-28s max abs err %.3e, max rel err %.3e (|ref| >= %g), max |ref| %.3f\n",
              what.c_str(), d.max_abs, d.max_rel, dit_test::kRelFloor, d.max_ref);
}

class DiTParity : public ::testing::TestWithParam<FixtureCase> {
 protected:
  void SetUp() override {
    const auto& c = GetParam();
    io = dit::load_safetensors(c.io(), &io_meta);
    for (const char* key : {"x", "t", "y", "out", "cfg_out", "pos_embed_ref", "t_freq_256",
                            "t_freq_9"})
      ASSERT_TRUE(io.count(key)) << c.io() << " lacks '" << key << "': regenerate it with "
                                 << "tests/reference/make_dit_fixtures.py";
  }
  dit::TensorMap io;
  dit::Metadata io_meta;
};

TEST_P(DiTParity, ConfigInferredFromWeightsIsTheScriptsConfig) {
  const auto& c = GetParam();
  dit::SafeTensorsFile file(c.weights());
  EXPECT_EQ(file.metadata().at("dit.num_heads"), std::to_string(c.config.num_heads));
  auto inferred = dit::infer_config(file);
  dit_test::expect_same_config(inferred, c.config);
  // ... and the config the script recorded in the io file's metadata.
  EXPECT_EQ(io_meta.at("dit.input_size"), std::to_string(inferred.input_size));
  EXPECT_EQ(io_meta.at("dit.patch_size"), std::to_string(inferred.patch_size));
  EXPECT_EQ(io_meta.at("dit.in_channels"), std::to_string(inferred.in_channels));
  EXPECT_EQ(io_meta.at("dit.hidden_size"), std::to_string(inferred.hidden_size));
  EXPECT_EQ(io_meta.at("dit.depth"), std::to_string(inferred.depth));
  EXPECT_EQ(io_meta.at("dit.num_heads"), std::to_string(inferred.num_heads));
  EXPECT_DOUBLE_EQ(std::stod(io_meta.at("dit.mlp_ratio")), inferred.mlp_ratio);
  EXPECT_EQ(io_meta.at("dit.num_classes"), std::to_string(inferred.num_classes));
  EXPECT_EQ(io_meta.at("dit.learn_sigma"), inferred.learn_sigma ? "1" : "0");
}

TEST_P(DiTParity, ForwardMatchesReference) {
  const auto& c = GetParam();
  torch::NoGradGuard no_grad;
  dit::DiT model = dit::load_dit(c.weights());
  dit_test::expect_same_config(model->config(), c.config);
  const auto& x = io.at("x");  // [B, C, H, W]
  const auto& t = io.at("t");  // [B], reference unit (0 .. 999)
  const auto& y = io.at("y");  // [B], the last one the null class
  ASSERT_EQ(y[-1].item<int64_t>(), c.config.null_class());

  auto out = model->forward(x, t, y);  // [B, out_channels, H, W]
  ASSERT_EQ(out.sizes(), io.at("out").sizes());
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  Diff d = compare(out, io.at("out"));
  report(c.name + " forward", d);
  EXPECT_LE(d.max_abs, kAbsTol);
  EXPECT_LE(d.max_rel, kRelTol);
  // The randomised model is far from the identity: the output is not trivially small.
  EXPECT_GT(d.max_ref, 1.0);
}

TEST_P(DiTParity, ClassifierFreeGuidanceMatchesReference) {
  const auto& c = GetParam();
  torch::NoGradGuard no_grad;
  dit::DiT model = dit::load_dit(c.weights());
  const auto& x = io.at("x");
  const auto& t = io.at("t");
  const auto& y = io.at("y");

  // The model itself, t in the reference unit (not dit_velocity's t * kTimestepScale).
  int calls = 0;
  dit::ConditionalVelocityFn fn = [&](const torch::Tensor& xb, const torch::Tensor& tb,
                                      const torch::Tensor& yb) {
    ++calls;
    EXPECT_EQ(xb.size(0), 2 * x.size(0));  // cond and uncond in one batch of 2B
    return model->forward(xb, tb, yb);
  };
  dit::GuidanceOptions opts;
  opts.scale = std::stod(io_meta.at("cfg_scale"));
  EXPECT_DOUBLE_EQ(opts.scale, 2.5);
  opts.guided_channels = c.config.in_channels;
  // The guidance interval is in the unit of the t passed in: cover the whole reference range.
  opts.t_lo = 0.0, opts.t_hi = 1000.0;
  auto v = dit::classifier_free_guidance(fn, y, c.config.null_class(), opts);
  auto out = v(x, t);  // [B, out_channels, H, W]
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(out.sizes(), io.at("cfg_out").sizes());
  Diff d = compare(out, io.at("cfg_out"));
  report(c.name + " cfg (scale 2.5)", d);
  // v_u + s (v_c - v_u) carries the forward's error times |s| + |1 - s| (= 4 here): on CPUs
  // without AVX-512 (OpenBLAS AVX2 kernels) the plain forward's 3e-5 becomes 1.0-1.3e-4.
  const double amplification = std::abs(opts.scale) + std::abs(1 - opts.scale);
  EXPECT_LE(d.max_abs, kAbsTol * amplification);
  EXPECT_LE(d.max_rel, kRelTol * amplification);
  // Guidance changed the guided channels (the fixture is not the plain forward).
  EXPECT_GT((io.at("cfg_out") - io.at("out")).abs().narrow(1, 0, c.config.in_channels)
                .max().item<double>(), 0.1);
}

TEST_P(DiTParity, PositionTableMatchesReference) {
  const auto& c = GetParam();
  const auto& ref = io.at("pos_embed_ref");  // [N, D], numpy float64 cast to float32
  auto table = dit::sincos_pos_embed_2d(c.config.hidden_size, c.config.grid_size());
  ASSERT_EQ(table.sizes(), ref.sizes());
  Diff d = compare(table, ref);
  report(c.name + " sincos_pos_embed_2d", d);
  EXPECT_LE(d.max_abs, 1e-7);
  // The stored pos_embed (the reference state dict's, F32) and a fresh model's buffer.
  dit::SafeTensorsFile file(c.weights());
  EXPECT_EQ(file.dtype_name("pos_embed"), "F32");
  EXPECT_LE(compare(file.view("pos_embed").squeeze(0), ref).max_abs, 1e-7);
  dit::DiT fresh(c.config);
  EXPECT_TRUE(torch::equal(fresh->pos_embed.squeeze(0), table));
}

TEST_P(DiTParity, TimestepFrequenciesMatchReference) {
  const auto& t = io.at("t");
  for (int64_t dim : {256, 9}) {
    const auto& ref = io.at("t_freq_" + std::to_string(dim));  // [B, dim]
    auto freq = dit::timestep_frequencies(t, dim);
    ASSERT_EQ(freq.sizes(), ref.sizes());
    Diff d = compare(freq, ref);
    report("timestep_frequencies " + std::to_string(dim), d);
    // float32 cos/sin of arguments up to 999: allow a few ulps of the argument's size.
    EXPECT_LE(d.max_abs, 1e-6);
  }
  // Odd dims are zero-padded; t = 0 gives [1...1, 0...0, 0].
  auto odd = dit::timestep_frequencies(t, 9);
  EXPECT_EQ(odd[0][8].item<float>(), 0.0f);
  EXPECT_EQ(odd[0][0].item<float>(), 1.0f);
  EXPECT_EQ(odd[0][4].item<float>(), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DiTParity, ::testing::ValuesIn(dit_test::fixture_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
