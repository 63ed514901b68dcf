// Image generation is deterministic per (seed, index), whatever the chunking; FD behaves.
#include <dit/error.h>
#include <dit/eval.h>
#include <dit/image.h>
#include <gtest/gtest.h>

namespace {

dit::DiT random_model() {
  dit::DiTConfig c;
  c.input_size = 8, c.patch_size = 2, c.in_channels = 1, c.hidden_size = 32, c.depth = 1,
  c.num_heads = 2, c.num_classes = 3, c.learn_sigma = false;
  torch::manual_seed(5);
  dit::DiT model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0, 0.1);  // non-trivial velocities
  model->eval();
  return model;
}

TEST(Generate, SameSeedIsBitIdenticalAndChunkingDoesNotMatter) {
  dit::set_threads(1);
  auto model = random_model();
  auto labels = torch::tensor({0, 1, 2, 0, 1}, torch::kLong);
  for (std::string sampler : {"euler", "heun", "euler-maruyama"}) {
    dit::ImageSampling s;
    s.sampler = sampler, s.options.steps = 6, s.guidance.scale = 2.0, s.seed = 11;
    dit::Progress quiet;
    s.chunk = 5;
    auto whole = dit::generate_images(model, labels, s, quiet);
    auto again = dit::generate_images(model, labels, s, quiet);
    EXPECT_TRUE(torch::equal(whole, again)) << sampler;
    s.chunk = 2;
    auto chunked = dit::generate_images(model, labels, s, quiet);
    // Different batch shapes may round differently in the GEMMs; per-sample noise is identical.
    EXPECT_LT((whole - chunked).abs().max().item<float>(), 1e-4f) << sampler;
    // Image 3 generated alone (first_index 3) equals image 3 of the batch.
    auto alone = dit::generate_images(model, labels.narrow(0, 3, 1), s, quiet, nullptr, 3);
    EXPECT_LT((alone[0] - whole[3]).abs().max().item<float>(), 1e-4f) << sampler;
    s.seed = 12;
    EXPECT_FALSE(torch::equal(dit::generate_images(model, labels, s, quiet), whole)) << sampler;
  }
}

TEST(Generate, InitNoiseReplacesTheSeed) {
  auto model = random_model();
  auto labels = torch::tensor({1, 2}, torch::kLong);
  auto noise = torch::randn({2, 1, 8, 8});
  dit::ImageSampling a, b;
  a.seed = 1, b.seed = 2;
  dit::Progress quiet;
  EXPECT_TRUE(torch::equal(dit::generate_images(model, labels, a, quiet, nullptr, 0, noise),
                           dit::generate_images(model, labels, b, quiet, nullptr, 0, noise)));
}

TEST(Generate, NonFiniteSampleIsReportedWithItsIndexAndSeed) {
  auto model = random_model();
  {
    torch::NoGradGuard no_grad;
    model->final_layer->linear->bias.fill_(std::numeric_limits<float>::infinity());
  }
  dit::ImageSampling s;
  s.seed = 77;
  dit::Progress quiet;
  try {
    dit::generate_images(model, torch::tensor({0, 1}, torch::kLong), s, quiet);
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("sample 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("seed 77"), std::string::npos) << msg;
  }
}

TEST(FrechetDistance, MatchesClosedFormForGaussians) {
  torch::manual_seed(0);
  auto a = torch::randn({20000, 4}, torch::kFloat64);
  auto b = torch::randn({20000, 4}, torch::kFloat64);
  EXPECT_NEAR(dit::frechet_distance(a, a), 0.0, 1e-8);
  // Mean shift d in every dimension: FD = 4 d^2 (+ sampling noise).
  EXPECT_NEAR(dit::frechet_distance(a, b + 1.5), 4 * 1.5 * 1.5, 0.05);
  // Scale by s: FD = 4 (s - 1)^2 for unit covariances.
  EXPECT_NEAR(dit::frechet_distance(a, b * 2.0), 4.0, 0.1);
  EXPECT_THROW(dit::frechet_distance(a, torch::randn({10, 3}, torch::kFloat64)), dit::Error);
}

}  // namespace

// Images are a domain of the shared layer: dit::generate over ImageDomain gives the images
// generate_images gives (same noise per index, same sampling path), and "image" is registered.
TEST(ImageDomain, GenerateThroughTheDomainEqualsGenerateImages) {
  torch::manual_seed(0);
  auto config = dit::DiTConfig::preset("tiny");
  dit::DiT model(config);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.normal_(0, 0.05);
  }
  dit::ImageSampling sampling;
  sampling.options.steps = 3;
  sampling.seed = 9;
  dit::Progress silent;
  auto direct = dit::generate_images(model, torch::tensor({1, 4, 7}, torch::kLong), sampling, silent, nullptr, 5);
  dit::ImageDomain domain(config);
  auto generated = dit::generate(domain, *model, std::vector<int64_t>{1, 4, 7}, sampling, silent, 5);
  ASSERT_EQ(generated.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(generated[i].finite);
    EXPECT_EQ(generated[i].index, 5 + i);
    EXPECT_TRUE(torch::equal(generated[i].structure, direct[i])) << "image " << i;
  }
  EXPECT_EQ(dit::make_domain("image")->name(), "image");
}
