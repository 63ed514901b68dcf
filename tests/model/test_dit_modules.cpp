// DiT modules: the adaLN-Zero initialisation (identity blocks, zero output), the presets and
// the output shapes.
#include <dit/model.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>

#include "tests/model/dit_test_util.h"

namespace {

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(DiTInit, BlockWithZeroAdaLNIsTheIdentity) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  dit::DiTBlock block(64, 4, 256);
  // A standalone block has a random adaLN layer; zero it as DiT::initialize_weights does.
  auto* ada = block->adaLN_modulation[1]->as<torch::nn::LinearImpl>();
  ASSERT_NE(ada, nullptr);
  ada->weight.zero_();
  ada->bias.zero_();
  auto x = torch::randn({2, 16, 64}) * 3;  // [B, N, D]
  auto c = torch::randn({2, 64});          // [B, D]
  auto out = block->forward(x, c);
  EXPECT_TRUE(torch::equal(out, x));
  // With a key mask too.
  auto mask = torch::ones({2, 16}, torch::kBool);
  mask.index_put_({1, torch::indexing::Slice(10)}, false);
  EXPECT_TRUE(torch::equal(block->forward(x, c, mask), x));
  // And it is not the identity once the gates are non-zero.
  ada->bias.fill_(0.5);
  EXPECT_FALSE(torch::allclose(block->forward(x, c), x));
}

TEST(DiTInit, FreshModelBlocksAreIdentityAndOutputIsZero) {
  torch::NoGradGuard no_grad;
  for (const char* preset : {"tiny", "fmnist"}) {
    SCOPED_TRACE(preset);
    torch::manual_seed(2);
    auto cfg = dit::DiTConfig::preset(preset);
    dit::DiT model(cfg);
    const int64_t B = 3;
    auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
    auto t = torch::tensor({0.0f, 500.0f, 999.0f});
    auto y = torch::tensor({int64_t{0}, int64_t{5}, cfg.null_class()});
    auto c = model->condition(t, y);         // [B, D]
    auto tokens = model->embed_patches(x);   // [B, N, D]
    EXPECT_GT(c.abs().max().item<float>(), 0.0f);
    for (auto& block : *model->blocks) {
      auto out = block->as<dit::DiTBlockImpl>()->forward(tokens, c);
      EXPECT_TRUE(torch::equal(out, tokens));
    }
    // Zero final layer (adaLN-Zero): the output is exactly zero.
    auto out = model->forward(x, t, y);
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{B, cfg.out_channels(), cfg.input_size,
                                                 cfg.input_size}));
    EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
    // The reference initialisation elsewhere: zero biases, normal(0.02) tables.
    EXPECT_EQ(model->x_embedder->proj->bias.abs().max().item<float>(), 0.0f);
    auto table = model->y_embedder->embedding_table->weight;
    EXPECT_EQ(table.size(0), cfg.num_classes + 1);
    EXPECT_NEAR(table.std().item<double>(), 0.02, 0.005);
  }
}

TEST(DiTPresets, EveryPresetIsValidAndKnown) {
  // Table 1 of Peebles & Xie 2023: S 384/12/6, B 768/12/12, L 1024/24/16, XL 1152/28/16.
  const std::map<std::string, std::array<int64_t, 3>> sizes = {
      {"S", {384, 12, 6}}, {"B", {768, 12, 12}}, {"L", {1024, 24, 16}}, {"XL", {1152, 28, 16}}};
  auto names = dit::DiTConfig::preset_names();
  EXPECT_EQ(names.size(), 14u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    auto c = dit::DiTConfig::preset(name);
    EXPECT_NO_THROW(c.validate());
    if (name.rfind("DiT-", 0) != 0) continue;
    auto slash = name.find('/');
    const auto& s = sizes.at(name.substr(4, slash - 4));
    EXPECT_EQ(c.hidden_size, s[0]);
    EXPECT_EQ(c.depth, s[1]);
    EXPECT_EQ(c.num_heads, s[2]);
    EXPECT_EQ(c.patch_size, std::stoll(name.substr(slash + 1)));
    EXPECT_EQ(c.head_dim(), name.rfind("DiT-XL", 0) == 0 ? 72 : 64);  // 1152 / 16 for XL
    // Reference defaults: 32x32x4 latents, 1000 classes, learn_sigma.
    EXPECT_EQ(c.input_size, 32);
    EXPECT_EQ(c.in_channels, 4);
    EXPECT_EQ(c.num_classes, 1000);
    EXPECT_TRUE(c.learn_sigma);
    EXPECT_EQ(c.out_channels(), 8);
    // Also accepted without the "DiT-" prefix.
    EXPECT_EQ(dit::DiTConfig::preset(name.substr(4)).describe(), c.describe());
  }
  dit_test::expect_error([] { dit::DiTConfig::preset("DiT-M/2"); }, {"DiT-M/2", "DiT-S/2"});
  dit_test::expect_error([] { dit::DiTConfig::preset("S/3"); }, {"S/3"});
}

TEST(DiTPresets, ForwardShapes) {
  torch::NoGradGuard no_grad;
  // Cheap presets run a forward pass; S/8 has 16 tokens of width 384.
  for (const char* name : {"tiny", "fmnist", "DiT-S/8"}) {
    SCOPED_TRACE(name);
    auto cfg = dit::DiTConfig::preset(name);
    dit::DiT model(cfg);
    dit_test::randomize(*model, 3, 0.05);
    model->eval();
    const int64_t B = 2;
    auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
    auto out = model->forward(x, torch::tensor({10.0f, 900.0f}),
                              torch::tensor({int64_t{1}, cfg.null_class()}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{B, cfg.out_channels(), cfg.input_size,
                                                 cfg.input_size}));
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    // Token pieces.
    auto tokens = model->embed_patches(x);
    EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{B, cfg.num_patches(), cfg.hidden_size}));
    EXPECT_EQ(model->pos_embed.sizes(),
              (std::vector<int64_t>{1, cfg.num_patches(), cfg.hidden_size}));
  }
  // Wrong input shapes are dit::Errors.
  dit::DiT tiny(dit::DiTConfig::preset("tiny"));
  auto y = torch::zeros({2}, torch::kLong);
  dit_test::expect_error([&] { tiny->forward(torch::zeros({2, 3, 8, 8}), torch::zeros({2}), y); },
                         {"x must be", "4"});
  dit_test::expect_error([&] { tiny->forward(torch::zeros({2, 4, 8, 8}), torch::zeros({3}), y); },
                         {"t must be"});
}

TEST(DiTPresets, LearnSigmaDoublesOutputChannels) {
  torch::NoGradGuard no_grad;
  for (bool learn_sigma : {true, false}) {
    SCOPED_TRACE(learn_sigma);
    auto cfg = dit::DiTConfig::preset("tiny");
    cfg.learn_sigma = learn_sigma;
    const int64_t out_c = learn_sigma ? 2 * cfg.in_channels : cfg.in_channels;
    EXPECT_EQ(cfg.out_channels(), out_c);
    dit::DiT model(cfg);
    EXPECT_EQ(model->final_layer->linear->weight.size(0),
              cfg.patch_size * cfg.patch_size * out_c);
    auto out = model->forward(torch::randn({2, 4, 8, 8}), torch::zeros({2}),
                              torch::zeros({2}, torch::kLong));
    EXPECT_EQ(out.size(1), out_c);
  }
}

TEST(DiTPresets, UnconditionalModelHasNoLabelTable) {
  torch::NoGradGuard no_grad;
  auto cfg = dit::DiTConfig::preset("tiny");
  cfg.num_classes = 0;
  dit::DiT model(cfg);
  EXPECT_FALSE(model->y_embedder);
  auto sd = dit::state_dict(*model);
  EXPECT_EQ(sd.count("y_embedder.embedding_table.weight"), 0u);
  dit_test::randomize(*model, 4);
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({1.0f, 2.0f});
  // Labels are ignored.
  auto a = model->forward(x, t, torch::zeros({2}, torch::kLong));
  auto b = model->forward(x, t, torch::full({2}, 7, torch::kLong));
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(DiTPresets, StateDictUsesReferenceKeys) {
  dit::DiT model(dit::DiTConfig::preset("tiny"));  // depth 2
  auto sd = dit::state_dict(*model);
  std::vector<std::string> expected = {"pos_embed", "x_embedder.proj.weight",
                                       "x_embedder.proj.bias", "y_embedder.embedding_table.weight",
                                       "final_layer.linear.weight", "final_layer.linear.bias",
                                       "final_layer.adaLN_modulation.1.weight",
                                       "final_layer.adaLN_modulation.1.bias"};
  for (int i : {0, 2})
    for (const char* p : {"weight", "bias"})
      expected.push_back("t_embedder.mlp." + std::to_string(i) + "." + p);
  for (int b = 0; b < 2; ++b)
    for (const char* m : {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"})
      for (const char* p : {"weight", "bias"})
        expected.push_back("blocks." + std::to_string(b) + "." + m + "." + p);
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> keys;
  for (const auto& [k, v] : sd) keys.push_back(k);
  EXPECT_EQ(keys, expected);
}

// Parameter counts of the DiT paper / SiT paper tables: S 33M, B 130M, L 458M, XL 675M (for
// patch 2; patch 4 and 8 change only the patch embedding and final layer, < 1M). The reference
// counts pos_embed among its parameters (requires_grad=False); here it is a buffer, < 0.3M.
void check_parameter_counts(const std::string& size) {
  const std::map<std::string, double> paper_millions = {
      {"S", 33}, {"B", 130}, {"L", 458}, {"XL", 675}};
  for (const char* patch : {"2", "4", "8"}) {
    const std::string name = "DiT-" + size + "/" + patch;
    SCOPED_TRACE(name);
    dit::DiT model(dit::DiTConfig::preset(name));
    const double millions = static_cast<double>(count_parameters(*model)) / 1e6;
    std::printf("[ params  ] %s: %.3fM (paper: %.0fM)\n", name.c_str(), millions,
                paper_millions.at(size));
    EXPECT_NEAR(millions, paper_millions.at(size), 1.0);
  }
}

TEST(DiTPresets, ParameterCountsMatchPaperSmall) { check_parameter_counts("S"); }

// B, L and XL allocate 0.5 to 2.7 GB and take a while to initialise: on demand only.
TEST(DiTPresets, ParameterCountsMatchPaperLarge) {
  if (std::getenv("DIT_TEST_LARGE_PRESETS") == nullptr)
    GTEST_SKIP() << "DiT-B, L, XL not built: set DIT_TEST_LARGE_PRESETS=1";
  for (const char* size : {"B", "L", "XL"}) check_parameter_counts(size);
}

}  // namespace
