// The Stable Diffusion VAE (diffusers AutoencoderKL) against PyTorch: decode and encode parity
// on the fixture of tests/reference/make_vae_fixtures.py (3 levels, block_out_channels
// [8, 16, 16], 2 layers per block, 4 groups, random F16-exact weights), the older attention key
// names and 1x1-conv attention shapes, decoder-only files, and load errors.
//
// Tolerance (fp32): max |C++ - PyTorch| <= 1e-4 * max |PyTorch|. Both sides compute in float32
// on identical (F16-representable) weights and inputs; what differs is only the order of the
// sums (oneDNN vs PyTorch's conv algorithms, group-norm reductions, the fused attention's online
// softmax over key tiles), ~1e-7 relative per op, grown over ~30 conv layers to ~1e-6. 1e-4
// leaves margin for other CPUs and BLAS builds while still catching any real mistake (a missed
// shortcut, padding side, group count or attention scale changes outputs by > 1e-2).
#include <ATen/CPUGeneratorImpl.h>
#include <dit/error.h>
#include <dit/fs.h>
#include <dit/kernels.h>
#include <dit/safetensors.h>
#include <dit/vae.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace {

const std::string kWeights = std::string(DIT_TEST_FIXTURES) + "/vae_tiny_weights.safetensors";
const std::string kIo = std::string(DIT_TEST_FIXTURES) + "/vae_tiny_io.safetensors";
constexpr double kTolerance = 1e-4;  // relative to the output's max |.|, see the top

struct Fixture {
  dit::TensorMap weights, io;
  dit::Metadata meta;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture f;
    f.weights = dit::load_safetensors(kWeights, &f.meta);
    f.io = dit::load_safetensors(kIo);
    return f;
  }();
  return f;
}

double rel_error(const torch::Tensor& got, const torch::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  if (got.sizes() != want.sizes()) return 1e9;
  auto g = got.to(torch::kCPU, torch::kDouble), w = want.to(torch::kDouble);
  return ((g - w).abs().max() / w.abs().max()).item<double>();
}

std::string temp_path(const std::string& name) {
  return (dit::fs::temp_directory_path() /
          ("dit_vae_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Expects `f` to throw dit::Error whose message contains every string of `parts`.
template <class F>
void expect_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no dit::Error thrown; expected one mentioning " << parts[0];
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n lacks: " << p;
  }
}

// The fixture with the older diffusers attention names (query/key/value/proj_attn), and
// optionally the projections as 1x1 conv weights [C, C, 1, 1].
dit::TensorMap old_names(const dit::TensorMap& w, bool conv_shaped) {
  const std::pair<std::string, std::string> renames[] = {
      {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."},
      {".to_out.0.", ".proj_attn."}};
  dit::TensorMap out;
  for (const auto& [name, t] : w) {
    std::string key = name;
    torch::Tensor value = t;
    for (const auto& [from, to] : renames) {
      const auto at = key.find(from);
      if (at != std::string::npos && key.find(".attentions.") != std::string::npos) {
        key = key.substr(0, at) + to + key.substr(at + from.size());
        if (conv_shaped && t.dim() == 2) value = t.reshape({t.size(0), t.size(1), 1, 1});
      }
    }
    out[key] = value;
  }
  return out;
}

TEST(Vae, InfersTheConfigFromShapesAndMetadata) {
  const auto& f = fixture();
  const auto cfg = dit::infer_vae_config(f.weights, f.meta, kWeights);
  EXPECT_EQ(cfg.in_channels, 3);
  EXPECT_EQ(cfg.out_channels, 3);
  EXPECT_EQ(cfg.latent_channels, 4);
  EXPECT_EQ(cfg.block_out_channels, (std::vector<int64_t>{8, 16, 16}));
  EXPECT_EQ(cfg.layers_per_block, 2);
  EXPECT_EQ(cfg.norm_num_groups, 4);
  EXPECT_DOUBLE_EQ(cfg.scaling_factor, 0.18215);
  EXPECT_EQ(cfg.downscale(), 4);
  EXPECT_NE(cfg.describe().find("[8, 16, 16]"), std::string::npos) << cfg.describe();
  // The defaults are the SD VAE's.
  dit::VaeConfig sd;
  EXPECT_NO_THROW(sd.validate());
  EXPECT_EQ(sd.downscale(), 8);
}

TEST(Vae, DecodeMatchesPyTorch) {
  const auto& f = fixture();
  auto vae = dit::AutoencoderKL::load(kWeights);
  EXPECT_TRUE(vae.has_encoder());
  auto images = vae.decode(f.io.at("latents"));  // [2, 3, 32, 32]
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_LT(rel_error(images, f.io.at("decoded")), kTolerance);
  // Not clamped: the random-weight output exceeds [-1, 1], as PyTorch's does.
  EXPECT_GT(images.abs().max().item<double>(), 1.0);
}

TEST(Vae, DecodeWithEveryAttentionBackendMatchesPyTorch) {
  const auto& f = fixture();
  auto vae = dit::AutoencoderKL::load(kWeights);
  for (const auto& backend : dit::kernels::available_backends()) {
    if (backend == "cuda") continue;
    dit::kernels::ScopedBackend scoped(backend);
    EXPECT_LT(rel_error(vae.decode(f.io.at("latents")), f.io.at("decoded")), kTolerance)
        << backend;
  }
}

TEST(Vae, EncodeMatchesPyTorch) {
  const auto& f = fixture();
  auto vae = dit::AutoencoderKL::load(kWeights);
  const auto& images = f.io.at("images");
  EXPECT_LT(rel_error(vae.encode(images), f.io.at("encoded")), kTolerance);
  auto post = vae.posterior(images);
  EXPECT_LT(rel_error(post.mean, f.io.at("posterior_mean")), kTolerance);
  EXPECT_LT(rel_error(post.logvar, f.io.at("posterior_logvar")), kTolerance);
  // A sample draws eps from the generator exactly as torch.randn(shape, generator=g) does.
  auto gen = at::detail::createCPUGenerator(1234);
  EXPECT_LT(rel_error(vae.encode(images, gen), f.io.at("encoded_sample")), kTolerance);
  // Batch elements are independent.
  EXPECT_LT(rel_error(vae.encode(images.narrow(0, 1, 1)), f.io.at("encoded").narrow(0, 1, 1)),
            kTolerance);
}

TEST(Vae, OldAttentionNamesAndConvShapedProjectionsLoadIdentically) {
  const auto& f = fixture();
  auto vae = dit::AutoencoderKL::load(kWeights);
  const auto& latents = f.io.at("latents");
  const auto& images = f.io.at("images");
  auto want_dec = vae.decode(latents);
  auto want_enc = vae.encode(images);
  for (bool conv_shaped : {false, true}) {
    auto renamed = old_names(f.weights, conv_shaped);
    ASSERT_TRUE(renamed.count("decoder.mid_block.attentions.0.proj_attn.weight"));
    ASSERT_FALSE(renamed.count("decoder.mid_block.attentions.0.to_out.0.weight"));
    const std::string path = temp_path(conv_shaped ? "old_conv.safetensors" : "old.safetensors");
    dit::save_safetensors(path, renamed, f.meta);
    auto old = dit::AutoencoderKL::load(path);
    dit::fs::remove(path);
    EXPECT_TRUE(torch::equal(old.decode(latents), want_dec)) << conv_shaped;
    EXPECT_TRUE(torch::equal(old.encode(images), want_enc)) << conv_shaped;
  }
  // Only the current names in the fixture, so the conversion is what is tested here; the
  // canonical names with conv shapes load too.
  auto conv_only = f.weights;
  auto& w = conv_only.at("encoder.mid_block.attentions.0.to_v.weight");
  w = w.reshape({w.size(0), w.size(1), 1, 1});
  EXPECT_TRUE(torch::equal(
      dit::AutoencoderKL::from_weights(conv_only, f.meta, "conv_only").encode(images), want_enc));
}

TEST(Vae, DecoderOnlyFileDecodesAndRefusesToEncode) {
  const auto& f = fixture();
  dit::TensorMap decoder_only;
  for (const auto& [name, t] : f.weights)
    if (name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0)
      decoder_only[name] = t;
  const std::string path = temp_path("decoder_only.safetensors");
  dit::save_safetensors(path, decoder_only, f.meta);
  auto vae = dit::AutoencoderKL::load(path);
  dit::fs::remove(path);
  EXPECT_FALSE(vae.has_encoder());
  EXPECT_EQ(vae.config().in_channels, 3);
  EXPECT_TRUE(torch::equal(vae.decode(f.io.at("latents")),
                           dit::AutoencoderKL::load(kWeights).decode(f.io.at("latents"))));
  expect_error([&] { vae.encode(f.io.at("images")); }, {path, "decoder-only", "encoder"});
}

TEST(Vae, MissingExtraOrMisshapedTensorsAreErrorsNamingTheFileAndKey) {
  const auto& f = fixture();
  auto load = [&](const dit::TensorMap& w, const dit::Metadata& m) {
    const std::string path = temp_path("bad.safetensors");
    dit::save_safetensors(path, w, m);
    try {
      dit::AutoencoderKL::load(path);
    } catch (...) {
      dit::fs::remove(path);
      throw;
    }
    dit::fs::remove(path);
  };
  const std::string bad = temp_path("bad.safetensors");
  {
    auto w = f.weights;
    w.erase("decoder.up_blocks.1.resnets.2.conv2.bias");
    expect_error([&] { load(w, f.meta); },
                 {bad, "'decoder.up_blocks.1.resnets.2.conv2.bias' missing", "[16]"});
  }
  {
    auto w = f.weights;  // a partial encoder is not a decoder-only file
    w.erase("quant_conv.weight");
    expect_error([&] { load(w, f.meta); }, {bad, "'quant_conv.weight' missing"});
  }
  {
    auto w = f.weights;
    w["encoder.mid_block.attentions.0.to_k.weight"] = torch::zeros({16, 17});
    expect_error([&] { load(w, f.meta); },
                 {bad, "'encoder.mid_block.attentions.0.to_k.weight'", "[16, 17]",
                  "expected [16, 16]"});
  }
  {
    auto w = old_names(f.weights, false);
    w["decoder.mid_block.attentions.0.key.weight"] = torch::zeros({16, 16, 3, 3});
    expect_error([&] { load(w, f.meta); },
                 {bad, "'decoder.mid_block.attentions.0.key.weight'", "[16, 16, 3, 3]"});
  }
  {
    auto w = f.weights;
    w["decoder.up_blocks.0.resnets.0.conv_shortcut.weight"] = torch::zeros({16, 16, 1, 1});
    expect_error([&] { load(w, f.meta); },
                 {bad, "unexpected tensor 'decoder.up_blocks.0.resnets.0.conv_shortcut.weight'"});
  }
  {
    auto w = f.weights;  // the same parameter under both names
    w["encoder.mid_block.attentions.0.query.weight"] =
        w.at("encoder.mid_block.attentions.0.to_q.weight");
    expect_error([&] { load(w, f.meta); },
                 {bad, "encoder.mid_block.attentions.0.query.weight",
                  "encoder.mid_block.attentions.0.to_q.weight"});
  }
  {
    auto w = f.weights;
    w["encoder.conv_in.weight"] = w.at("encoder.conv_in.weight").to(torch::kLong);
    expect_error([&] { load(w, f.meta); }, {bad, "'encoder.conv_in.weight'", "floating"});
  }
  // Without the metadata the group count defaults to 32, which does not divide 8 channels.
  expect_error([&] { load(f.weights, {}); }, {bad, "norm_num_groups", "vae.norm_num_groups"});
  expect_error([&] { load(f.weights, {{"vae.norm_num_groups", "four"}}); },
               {bad, "'vae.norm_num_groups'", "four", "integer"});
  expect_error(
      [&] { load(f.weights, {{"vae.norm_num_groups", "4"}, {"vae.scaling_factor", "-1"}}); },
      {bad, "scaling_factor"});
  // Not a diffusers AutoencoderKL at all (e.g. an ldm checkpoint).
  expect_error(
      [&] { load({{"first_stage_model.decoder.conv_in.weight", torch::zeros({1})}}, {}); },
      {bad, "decoder.conv_in.weight", "CompVis"});
  expect_error([&] { load({{"x", torch::zeros({1})}}, {}); }, {bad, "not a diffusers"});
}

TEST(Vae, BadInputShapesAreErrors) {
  auto vae = dit::AutoencoderKL::load(kWeights);
  expect_error([&] { vae.decode(torch::zeros({1, 3, 8, 8})); },
               {kWeights, "[B, 4, h, w]", "[1, 3, 8, 8]"});
  expect_error([&] { vae.decode(torch::zeros({4, 8, 8})); }, {"decode", "[4, 8, 8]"});
  expect_error([&] { vae.encode(torch::zeros({1, 3, 30, 32})); }, {"encode", "multiples of 4"});
  expect_error([&] { vae.encode(torch::zeros({1, 1, 32, 32})); }, {"encode", "[B, 3, H, W]"});
}

TEST(Vae, CudaMatchesPyTorch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto& f = fixture();
  // fp32 without TF32 (cuDNN convolutions use TF32 by default: ~1e-3 relative).
  struct NoTf32 {
    at::Context& ctx = at::globalContext();
    const bool cudnn = ctx.allowTF32CuDNN(), cublas = ctx.allowTF32CuBLAS();
    NoTf32() { ctx.setAllowTF32CuDNN(false), ctx.setAllowTF32CuBLAS(false); }
    ~NoTf32() { ctx.setAllowTF32CuDNN(cudnn), ctx.setAllowTF32CuBLAS(cublas); }
  };
  auto no_tf32 = std::make_unique<NoTf32>();
  dit::VaeLoadOptions opts;
  opts.device = torch::Device(torch::kCUDA, 0);
  auto vae = dit::AutoencoderKL::load(kWeights, opts);
  auto dec = vae.decode(f.io.at("latents"));
  EXPECT_TRUE(dec.is_cuda());
  EXPECT_LT(rel_error(dec, f.io.at("decoded")), kTolerance);
  EXPECT_LT(rel_error(vae.encode(f.io.at("images")), f.io.at("encoded")), kTolerance);
  // A CPU generator gives the same sample on the GPU.
  EXPECT_LT(rel_error(vae.encode(f.io.at("images"), at::detail::createCPUGenerator(1234)),
                      f.io.at("encoded_sample")),
            kTolerance);
  no_tf32.reset();
  // bf16: weights, activations and products in bfloat16 (8 bits of mantissa: 4e-3 per rounding,
  // grown over ~30 layers); a smoke test of the dtype path, where a layout or dtype bug is O(1).
  opts.dtype = torch::kBFloat16;
  auto half = dit::AutoencoderKL::load(kWeights, opts);
  auto dec16 = half.decode(f.io.at("latents"));
  EXPECT_EQ(dec16.scalar_type(), torch::kBFloat16);
  EXPECT_LT(rel_error(dec16, f.io.at("decoded")), 1e-1);
}

}  // namespace
