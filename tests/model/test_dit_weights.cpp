// DiT weights: config inference from shapes and metadata, save/load round trips, errors that
// name the file and the tensor, and EMA weights of training checkpoints.
#include <dit/model.h>
#include <dit/safetensors.h>
#include <gtest/gtest.h>

#include <limits>
#include <map>

#include "tests/model/dit_test_util.h"

namespace {

using dit_test::expect_error;
using dit_test::TempDir;

// Shape lookup over a TensorMap, for infer_config without files.
dit::ShapeLookup shapes_of(const dit::TensorMap& m) {
  return [&m](const std::string& name) -> std::optional<std::vector<int64_t>> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return it->second.sizes().vec();
  };
}

struct Inputs {
  torch::Tensor x, t, y;
};
Inputs inputs_for(const dit::DiTConfig& c, int64_t B = 3) {
  torch::manual_seed(11);
  Inputs in;
  in.x = torch::randn({B, c.in_channels, c.input_size, c.input_size});
  in.t = torch::linspace(0, 999, B);
  in.y = torch::arange(B, torch::kLong) % (c.num_classes + 1);
  return in;
}

TEST(DiTWeights, SaveLoadRoundTripIsBitIdentical) {
  torch::NoGradGuard no_grad;
  TempDir dir;
  auto fixtures = dit_test::fixture_cases();
  auto unconditional = dit::DiTConfig::preset("tiny");
  unconditional.num_classes = 0, unconditional.mlp_ratio = 2.0, unconditional.num_heads = 2;
  fixtures.push_back({"tiny_uncond_mlp2", unconditional});
  for (const auto& fc : fixtures) {
    SCOPED_TRACE(fc.name);
    dit::DiT model(fc.config);
    dit_test::randomize(*model, 5);
    model->eval();
    const auto path = dir.file(fc.name + ".safetensors");
    dit::save_dit(path, model, torch::kFloat32, {{"note", "round trip"}});

    dit::SafeTensorsFile file(path);
    EXPECT_EQ(file.metadata().at("note"), "round trip");
    EXPECT_EQ(file.metadata().at("dit.num_heads"), std::to_string(fc.config.num_heads));
    dit::DiT loaded = dit::load_dit(path);
    dit_test::expect_same_config(loaded->config(), fc.config);

    auto in = inputs_for(fc.config);
    auto a = model->forward(in.x, in.t, in.y);
    auto b = loaded->forward(in.x, in.t, in.y);
    EXPECT_TRUE(torch::equal(a, b));
    for (const auto& [name, value] : dit::state_dict(*model))
      EXPECT_TRUE(torch::equal(value, dit::state_dict(*loaded).at(name))) << name;
  }
}

TEST(DiTWeights, HalfPrecisionSaveLoadsAsFloat32) {
  torch::NoGradGuard no_grad;
  TempDir dir;
  dit::DiT model(dit::DiTConfig::preset("tiny"));
  dit_test::randomize(*model, 6);
  const auto path = dir.file("half.safetensors");
  dit::save_dit(path, model, torch::kFloat16);
  dit::SafeTensorsFile file(path);
  EXPECT_EQ(file.dtype_name("blocks.0.attn.qkv.weight"), "F16");
  dit::DiT loaded = dit::load_dit(path);
  auto w = loaded->blocks[0]->as<dit::DiTBlockImpl>()->attn->qkv->weight;
  EXPECT_EQ(w.scalar_type(), torch::kFloat32);
  auto ref = model->blocks[0]->as<dit::DiTBlockImpl>()->attn->qkv->weight;
  EXPECT_TRUE(torch::equal(w, ref.to(torch::kFloat16).to(torch::kFloat32)));
}

TEST(DiTWeights, HeadsComeFromMetadata) {
  for (const auto& fc : dit_test::fixture_cases()) {
    SCOPED_TRACE(fc.name);
    auto weights = dit::load_safetensors(fc.weights());
    // With the metadata: the script's head count (not derivable from shapes).
    auto c = dit::infer_config(shapes_of(weights), {{"dit.num_heads", std::to_string(
                                                                          fc.config.num_heads)}},
                               fc.weights());
    EXPECT_EQ(c.num_heads, fc.config.num_heads);
    // Another head count in the metadata is taken as is.
    c = dit::infer_config(shapes_of(weights), {{"dit.num_heads", "2"}}, "w.safetensors");
    EXPECT_EQ(c.num_heads, 2);
    expect_error([&] {
      dit::infer_config(shapes_of(weights), {{"dit.num_heads", "four"}}, "w.safetensors");
    }, {"w.safetensors", "dit.num_heads", "four"});
    expect_error([&] {
      dit::infer_config(shapes_of(weights), {{"dit.num_heads", "5"}}, "w.safetensors");
    }, {"w.safetensors", "num_heads 5"});
  }
  // Without metadata: the reference width -> heads table, then head dim 64, else an error.
  auto tiny = dit::load_safetensors(dit_test::fixture_cases()[0].weights());
  EXPECT_EQ(dit::infer_config(shapes_of(tiny), {}, "tiny").num_heads, 1);  // width 64
  auto small = dit::load_safetensors(dit_test::fixture_cases()[1].weights());
  expect_error([&] { dit::infer_config(shapes_of(small), {}, "small.safetensors"); },
               {"small.safetensors", "heads", "96", "dit.num_heads"});
  dit::DiT s8(dit::DiTConfig::preset("DiT-S/8"));
  auto sd = dit::state_dict(*s8);
  auto c = dit::infer_config(shapes_of(sd), {}, "s8");
  EXPECT_EQ(c.num_heads, 6);
  dit_test::expect_same_config(c, dit::DiTConfig::preset("DiT-S/8"));
}

TEST(DiTWeights, InferConfigPrefixAndMissingShapes) {
  auto weights = dit::load_safetensors(dit_test::fixture_cases()[0].weights());
  dit::TensorMap prefixed;
  for (const auto& [k, v] : weights) prefixed["ema." + k] = v;
  dit::Metadata meta = {{"dit.num_heads", "4"}};
  dit_test::expect_same_config(dit::infer_config(shapes_of(prefixed), meta, "ckpt", "ema."),
                               dit_test::fixture_cases()[0].config);
  expect_error([&] { dit::infer_config(shapes_of(prefixed), meta, "ckpt.safetensors"); },
               {"ckpt.safetensors", "x_embedder.proj.weight"});
  for (const char* key : {"x_embedder.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight",
                          "final_layer.linear.weight"}) {
    SCOPED_TRACE(key);
    auto w = weights;
    w.erase(key);
    expect_error([&] { dit::infer_config(shapes_of(w), meta, "cut.safetensors"); },
                 {"cut.safetensors", key});
    w = weights;
    w[key] = torch::zeros({3});  // wrong rank
    expect_error([&] { dit::infer_config(shapes_of(w), meta, "bad.safetensors"); },
                 {"bad.safetensors", key});
  }
  // Final layer rows that are neither p*p*C nor p*p*2C.
  auto w = weights;
  w["final_layer.linear.weight"] = torch::zeros({17, 64});
  expect_error([&] { dit::infer_config(shapes_of(w), meta, "rows.safetensors"); },
               {"rows.safetensors", "final_layer.linear.weight", "17"});
}

// weight_shapes() and parameter_count() describe exactly the module's state dict: load_dit
// checks a file against them before it allocates the model.
TEST(DiTWeights, WeightShapesAndParameterCountMatchTheModule) {
  auto uncond = dit::DiTConfig::preset("tiny");
  uncond.num_classes = 0, uncond.learn_sigma = false, uncond.mlp_ratio = 2.5;
  for (const auto& c : {dit::DiTConfig::preset("tiny"), dit::DiTConfig::preset("fmnist"), uncond}) {
    SCOPED_TRACE(c.describe());
    dit::DiT model(c);
    std::map<std::string, std::vector<int64_t>> from_module;
    int64_t count = 0;
    for (const auto& [name, t] : dit::state_dict(*model)) {
      from_module[name] = t.sizes().vec();
      count += t.numel();
    }
    const auto shapes = c.weight_shapes();
    const std::map<std::string, std::vector<int64_t>> from_config(shapes.begin(), shapes.end());
    EXPECT_EQ(from_config, from_module);
    EXPECT_EQ(c.parameter_count(), count);
  }
}

// Shapes of a damaged file are arbitrary non-negative integers (zero-sized tensors cost no
// bytes): zero or absurd sizes are named, never divided by, multiplied into an overflow or
// allocated.
TEST(DiTWeights, AbsurdShapesAreRejectedBeforeArithmetic) {
  const dit::TensorMap weights = dit::load_safetensors(dit_test::fixture_cases()[0].weights());
  const dit::Metadata meta = {{"dit.num_heads", "4"}};
  std::map<std::string, std::vector<int64_t>> base;
  for (const auto& [k, v] : weights) base[k] = v.sizes().vec();
  const auto lookup = [](const std::map<std::string, std::vector<int64_t>>& m) {
    return [&m](const std::string& name) -> std::optional<std::vector<int64_t>> {
      auto it = m.find(name);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  const int64_t huge = int64_t{1} << 62;
  struct Case {
    std::string key;
    std::vector<int64_t> shape;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"x_embedder.proj.weight", {64, 4, 0, 0}, "outside"},  // patch 0: p*p divides
      {"x_embedder.proj.weight", {0, 4, 2, 2}, "outside"},
      {"x_embedder.proj.weight", {huge, 4, 2, 2}, "outside"},
      {"x_embedder.proj.weight", {64, 4, huge, huge}, "outside"},
      {"x_embedder.proj.weight", {64, 4, 2, 3}, "non-square"},
      {"pos_embed", {1, 0, 64}, "outside"},
      {"pos_embed", {1, huge, 64}, "outside"},
      {"pos_embed", {1, 15, 64}, "grid^2"},
      {"blocks.0.mlp.fc1.weight", {huge, 64}, "outside"},
      {"blocks.0.mlp.fc1.weight", {0, 64}, "outside"},
      {"final_layer.linear.weight", {huge, 64}, "outside"},
      {"final_layer.linear.weight", {0, 64}, "outside"},
      {"y_embedder.embedding_table.weight", {0, 64}, "num_classes"},
      {"y_embedder.embedding_table.weight", {}, "rank 0, expected 2"},
      {"y_embedder.embedding_table.weight", {huge, 64}, "num_classes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key + " " + c.expect);
    auto m = base;
    m[c.key] = c.shape;
    dit_test::expect_error([&] { dit::infer_config(lookup(m), meta, "absurd.safetensors"); },
                           {"absurd.safetensors", c.expect});
  }
  for (const char* heads : {"0", "-4", "7", "99999999999999999999", "four", "16777217"}) {
    SCOPED_TRACE(heads);
    dit_test::expect_error(
        [&] { dit::infer_config(lookup(base), {{"dit.num_heads", heads}}, "heads.safetensors"); },
        {"heads.safetensors"});
  }
}

class DiTWeightErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    weights = dit::load_safetensors(dit_test::fixture_cases()[0].weights(), &meta);
  }
  std::string write(const std::string& name, const dit::TensorMap& w) {
    auto path = dir.file(name);
    dit::save_safetensors(path, w, meta);
    return path;
  }
  TempDir dir;
  dit::TensorMap weights;
  dit::Metadata meta;
};

TEST_F(DiTWeightErrors, MissingTensorNamesFileAndTensor) {
  for (const char* key : {"blocks.1.mlp.fc2.bias", "t_embedder.mlp.2.weight",
                          "final_layer.adaLN_modulation.1.bias", "x_embedder.proj.weight",
                          "blocks.0.attn.qkv.weight", "pos_embed"}) {
    SCOPED_TRACE(key);
    auto w = weights;
    w.erase(key);
    auto path = write("missing.safetensors", w);
    expect_error([&] { dit::load_dit(path); }, {path, key});
  }
}

// A zero-sized tensor costs no bytes: a file may declare a huge model cheaply. load_dit checks
// every shape against the inferred config before allocating anything.
TEST_F(DiTWeightErrors, ZeroSizedTensorsCannotDeclareAHugeModel) {
  for (const char* key : {"t_embedder.mlp.2.weight", "blocks.0.adaLN_modulation.1.weight",
                          "final_layer.adaLN_modulation.1.weight"}) {
    SCOPED_TRACE(key);
    auto w = weights;
    w[key] = torch::zeros({0, 1 << 30});
    auto path = write("zero.safetensors", w);
    expect_error([&] { dit::load_dit(path); }, {path, key, "has shape [0, 1073741824]"});
  }
}

TEST_F(DiTWeightErrors, NoLabelTableMeansUnconditional) {
  // num_classes is inferred from the label table: without it the file is an unconditional
  // model (documented in DiTConfig), not an error.
  auto w = weights;
  w.erase("y_embedder.embedding_table.weight");
  auto path = write("uncond.safetensors", w);
  dit::DiT model = dit::load_dit(path);
  EXPECT_EQ(model->config().num_classes, 0);
  EXPECT_FALSE(model->y_embedder);
}

TEST_F(DiTWeightErrors, MisshapedTensorNamesFileAndTensor) {
  for (const char* key : {"blocks.0.attn.proj.weight", "blocks.1.adaLN_modulation.1.bias",
                          "pos_embed", "final_layer.linear.bias", "t_embedder.mlp.0.weight"}) {
    SCOPED_TRACE(key);
    auto w = weights;
    auto shape = w.at(key).sizes().vec();
    shape.back() += 1;
    w[key] = torch::zeros(shape);
    auto path = write("misshaped.safetensors", w);
    expect_error([&] { dit::load_dit(path); }, {path, key});
  }
  // A label table of the wrong width.
  auto w = weights;
  w["y_embedder.embedding_table.weight"] = torch::zeros({11, 32});
  auto path = write("table.safetensors", w);
  expect_error([&] { dit::load_dit(path); }, {path, "y_embedder.embedding_table.weight"});
}

TEST_F(DiTWeightErrors, UnexpectedAndNonFiniteTensors) {
  auto w = weights;
  w["blocks.0.attn.q_norm.weight"] = torch::ones({16});
  auto path = write("extra.safetensors", w);
  expect_error([&] { dit::load_dit(path); }, {path, "blocks.0.attn.q_norm.weight"});

  w = weights;
  w["blocks.1.mlp.fc1.bias"] = w.at("blocks.1.mlp.fc1.bias").to(torch::kFloat32).clone();
  w["blocks.1.mlp.fc1.bias"][3] = std::numeric_limits<float>::quiet_NaN();
  path = write("nan.safetensors", w);
  expect_error([&] { dit::load_dit(path); }, {path, "blocks.1.mlp.fc1.bias", "NaN"});

  expect_error([&] { dit::load_dit(dir.file("absent.safetensors")); }, {"absent.safetensors"});
}

TEST_F(DiTWeightErrors, CheckpointLoadsItsEmaWeights) {
  torch::NoGradGuard no_grad;
  // A training checkpoint (FlowMatchingTrainer::save_checkpoint layout): model.*, ema.*, and
  // optimizer moments; the online weights differ from the EMA ones.
  dit::TensorMap ckpt;
  for (const auto& [k, v] : weights) {
    ckpt["ema." + k] = v;
    auto other = v.to(torch::kFloat32) * 0.5 + 0.25;
    ckpt["model." + k] = k == "pos_embed" ? v : other;
    if (k != "pos_embed") ckpt["adamw.m." + k] = torch::zeros_like(other);
  }
  auto path = write("checkpoint.safetensors", ckpt);
  dit::DiT from_ckpt = dit::load_dit(path);
  dit::DiT plain = dit::load_dit(dit_test::fixture_cases()[0].weights());
  dit_test::expect_same_config(from_ckpt->config(), plain->config());
  auto in = inputs_for(plain->config());
  EXPECT_TRUE(torch::equal(from_ckpt->forward(in.x, in.t, in.y), plain->forward(in.x, in.t, in.y)));
  // And the fixture's reference output, through the EMA weights.
  auto io = dit::load_safetensors(dit_test::fixture_cases()[0].io());
  auto d = dit_test::compare(from_ckpt->forward(io.at("x"), io.at("t"), io.at("y")), io.at("out"));
  EXPECT_LE(d.max_abs, 1e-5);
}

}  // namespace
