// The published-checkpoint path: a DiT in the official format saved with torch.save (state
// dict; and as a SiT training checkpoint), loaded from the .pt, sampled by the engine's ddim /
// ddpm (and euler for SiT) with the official classifier-free guidance, against a faithful
// PyTorch implementation of the official samplers from the same noise
// (tests/reference/make_official_dit_fixtures.py).
#include <dit/flow.h>
#include <dit/image.h>
#include <dit/safetensors.h>
#include <dit/sampler.h>

#include <cstdio>

#include "tests/model/dit_test_util.h"

namespace {

using dit_test::fixture;

std::string official(const std::string& name) { return fixture("official/" + name); }

dit::DiT load_official(const std::string& name, int64_t heads = 2) {
  dit::DiTLoadOptions options;
  options.heads = heads;
  return dit::load_dit(official(name), options);
}

// The engine's samples of the fixture's z and labels with `sampler` at `steps` and CFG scale.
torch::Tensor engine_samples(dit::DiT& model, const std::string& sampler, int steps, double cfg) {
  const dit::TensorMap io = dit::load_safetensors(official("samples.safetensors"));
  dit::ImageSampling s;
  s.sampler = sampler;
  s.seed = 42;  // the fixture's SAMPLE_SEED: DDPM's per-sample step noise
  s.options.steps = steps;
  s.guidance.scale = cfg;
  // guided_channels left at -1: the kind's default, the official forward_with_cfg's 3 channels.
  dit::Progress quiet;
  return dit::generate_images(model, io.at("y"), s, quiet, nullptr, 0, io.at("z"));
}

// Relative error: max |got - ref| over max |ref| (the samples of a random network reach
// hundreds: element-wise relative error near zero crossings says nothing).
double relative_error(const torch::Tensor& got, const std::string& key) {
  const auto ref = dit::load_safetensors(official("samples.safetensors")).at(key);
  EXPECT_EQ(got.sizes(), ref.sizes()) << key;
  const double err = ((got - ref).abs().max() / ref.abs().max()).item<double>();
  std::printf("  %s: relative error %.2e (max |ref| %.1f)\n", key.c_str(), err,
              ref.abs().max().item<double>());
  return err;
}

TEST(OfficialDiT, RespacedTimestepsAreTheOfficialOnes) {
  // space_timesteps(1000, "50") and "250" of the official code (printed by the fixture script).
  auto t50 = dit::respaced_timesteps(1000, 50);
  ASSERT_EQ(t50.size(), 50u);
  EXPECT_EQ(std::vector<int>(t50.begin(), t50.begin() + 6), (std::vector<int>{0, 20, 41, 61, 82, 102}));
  EXPECT_EQ(std::vector<int>(t50.end() - 3, t50.end()), (std::vector<int>{958, 979, 999}));
  auto t250 = dit::respaced_timesteps(1000, 250);
  ASSERT_EQ(t250.size(), 250u);
  EXPECT_EQ(t250[1], 4);
  EXPECT_EQ(t250[248], 995);
  EXPECT_EQ(dit::respaced_timesteps(1000, 3), (std::vector<int>{0, 500, 999}));
  EXPECT_EQ(dit::respaced_timesteps(1000, 1000).size(), 1000u);
  dit_test::expect_error([] { dit::respaced_timesteps(1000, 1001); }, {"steps = 1001", "1 to 1000"});
}

TEST(OfficialDiT, PtStateDictLoadsWithInferredConfig) {
  // Width 32 is not a reference width and not a multiple of 64: heads cannot be inferred.
  dit_test::expect_error([] { dit::load_dit(official("DiT-tiny.pt")); },
                         {"DiT-tiny.pt", "heads", "32"});
  auto model = load_official("DiT-tiny.pt");
  const auto& c = model->config();
  EXPECT_EQ(c.prediction, "epsilon");  // a .pt not named SiT-*: the DiT release
  EXPECT_EQ(c.input_size, 8);
  EXPECT_EQ(c.patch_size, 2);
  EXPECT_EQ(c.in_channels, 4);
  EXPECT_TRUE(c.learn_sigma);
  EXPECT_EQ(c.out_channels(), 8);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.depth, 2);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.num_classes, 10);
  EXPECT_EQ(model->prediction(), "epsilon");
  // --prediction overrides the name rule.
  dit::DiTLoadOptions flow;
  flow.heads = 2, flow.prediction = "flow";
  EXPECT_EQ(dit::load_dit(official("DiT-tiny.pt"), flow)->config().prediction, "flow");
}

TEST(OfficialDiT, DdimWithOfficialGuidanceMatchesPyTorch) {
  auto model = load_official("DiT-tiny.pt");
  EXPECT_LT(relative_error(engine_samples(model, "ddim", 50, 4.0), "ddim_50"), 1e-3);
  EXPECT_LT(relative_error(engine_samples(model, "ddim", 20, 1.0), "ddim_20_nocfg"), 1e-3);
}

TEST(OfficialDiT, DdpmWithLearnedVarianceMatchesPyTorch) {
  auto model = load_official("DiT-tiny.pt");
  EXPECT_LT(relative_error(engine_samples(model, "ddpm", 25, 4.0), "ddpm_25"), 1e-3);
}

TEST(OfficialDiT, GuidingEveryChannelIsNotTheOfficialGuidance) {
  // The check above can fail: guidance on all 4 channels (the textbook form) moves the samples.
  auto model = load_official("DiT-tiny.pt");
  const dit::TensorMap io = dit::load_safetensors(official("samples.safetensors"));
  dit::ImageSampling s;
  s.sampler = "ddim", s.options.steps = 50, s.guidance.scale = 4.0, s.guidance.guided_channels = 0;
  dit::Progress quiet;
  auto all = dit::generate_images(model, io.at("y"), s, quiet, nullptr, 0, io.at("z"));
  EXPECT_GT(relative_error(all, "ddim_50"), 1e-2);
}

TEST(OfficialDiT, SitTrainingCheckpointSamplesInSitTime) {
  // SiT-tiny.pt is a training checkpoint {"model", "ema", "opt", "args": Namespace, "steps"}:
  // the EMA weights load, the Namespace is never constructed, the name says SiT.
  auto model = load_official("SiT-tiny.pt");
  EXPECT_EQ(model->config().prediction, "sit");
  EXPECT_LT(relative_error(engine_samples(model, "euler", 20, 4.0), "sit_euler_20"), 1e-3);
}

TEST(OfficialDiT, SamplersFollowTheModelsKind) {
  auto epsilon = load_official("DiT-tiny.pt");
  dit_test::expect_error([&] { engine_samples(epsilon, "euler", 10, 4.0); },
                         {"euler", "epsilon", "ddpm or ddim"});
  auto sit = load_official("SiT-tiny.pt");
  dit_test::expect_error([&] { engine_samples(sit, "ddim", 10, 4.0); },
                         {"ddim", "epsilon-prediction", "sit"});
  dit_test::expect_error([&] { engine_samples(epsilon, "ddpm", 1, 4.0); }, {"ddpm", "steps"});
}

TEST(OfficialDiT, ConvertedSafetensorsKeepsHeadsAndKind) {
  dit_test::TempDir dir;
  auto model = load_official("DiT-tiny.pt");
  dit::save_dit(dir.file("dit.safetensors"), model);
  auto again = dit::load_dit(dir.file("dit.safetensors"));  // no options: the metadata says
  EXPECT_EQ(again->config().prediction, "epsilon");
  EXPECT_EQ(again->config().num_heads, 2);
  for (const auto& [name, t] : dit::state_dict(*model))
    EXPECT_TRUE(torch::equal(t, dit::state_dict(*again).at(name))) << name;
}

}  // namespace
