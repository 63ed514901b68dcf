// The dit CLI as a user runs it: the bundled model samples a PNG grid; bad input gives one
// clear line on stderr, a non-zero exit and no output file.
#include <dit/image.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <gtest/gtest.h>
#ifdef DIT_HAVE_HDF5
#include <hdf5.h>
#endif
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <dit/fs.h>
#include <fstream>

#include "run_cli.h"

namespace {

namespace fs = dit::fs;

using dit::test::Result;
using dit::test::run;

std::string temp_dir() {
  auto dir = fs::temp_directory_path() / "dit_cli_test";
  fs::create_directories(dir);
  return dir.string();
}

const std::string kFast = " --steps 4 -t 1";

TEST(Cli, SamplesFourImagesWithTheBundledModel) {
  const std::string png = temp_dir() + "/grid.png";
  fs::remove(png);
  auto r = run("image sample -b 4 --class 7 --seed 3 -o " + png + kFast);
  ASSERT_EQ(r.code, 0) << r.output;
  auto image = dit::read_png(png);
  EXPECT_EQ(image.width, 2 * 30 + 2);  // 2 x 2 grid of 28 px with 2 px borders
  EXPECT_EQ(image.height, 2 * 30 + 2);
  EXPECT_EQ(image.channels, 1);
  ASSERT_FALSE(image.text.empty());
  EXPECT_NE(image.text[0].second.find("--seed 3"), std::string::npos) << image.text[0].second;
  // Not blank: a sneaker has bright and dark pixels.
  auto tile = image.pixels.narrow(0, 2, 28).narrow(1, 2, 28).to(torch::kFloat32);
  EXPECT_GT(tile.std().item<float>(), 20.0f);
}

TEST(Cli, SameSeedSameBytesAndInitNoiseOverridesSeed) {
  const std::string dir = temp_dir();
#ifdef DIT_HAVE_HDF5  // writing the H5MD file as well does not change the PNG
  const std::string h5 = " --h5 " + dir + "/a.h5";
#else  // built without HDF5 (a GPU machine): --h5 fails, "built without HDF5" (src/io/no_hdf5.cpp)
  const std::string h5;
#endif
  ASSERT_EQ(run("image sample -b 2 --seed 5 -o " + dir + "/a.png" + h5 + kFast).code, 0);
  ASSERT_EQ(run("image sample -b 2 --seed 5 -o " + dir + "/b.png" + kFast).code, 0);
  auto pixels = [](const std::string& p) { return dit::read_png(p).pixels; };
  EXPECT_TRUE(torch::equal(pixels(dir + "/a.png"), pixels(dir + "/b.png")));
#ifdef DIT_HAVE_HDF5
  EXPECT_TRUE(fs::exists(dir + "/a.h5"));
#endif

  dit::save_safetensors(dir + "/noise.safetensors", {{"noise", torch::randn({2, 1, 28, 28})}});
  ASSERT_EQ(run("image sample -b 2 --seed 1 --init-noise " + dir + "/noise.safetensors -o " + dir + "/c.png" + kFast).code, 0);
  ASSERT_EQ(run("image sample -b 2 --seed 2 --init-noise " + dir + "/noise.safetensors -o " + dir + "/d.png" + kFast).code, 0);
  EXPECT_TRUE(torch::equal(pixels(dir + "/c.png"), pixels(dir + "/d.png")));
  ASSERT_EQ(run("image sample -b 2 --seed 2 -o " + dir + "/f.png" + kFast).code, 0);
  EXPECT_FALSE(torch::equal(pixels(dir + "/d.png"), pixels(dir + "/f.png")));
  auto wrong = run("image sample -b 3 --init-noise " + dir + "/noise.safetensors -o " + dir + "/e.png" + kFast);
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.output.find("noise"), std::string::npos) << wrong.output;
  EXPECT_FALSE(fs::exists(dir + "/e.png"));
}

TEST(Cli, ErrorsAreOneLineWithNonZeroExitAndNoOutput) {
  const std::string dir = temp_dir();
  const std::string out = dir + "/never.png";
  fs::remove(out);
  // Corrupt checkpoint: a truncated copy of the bundled model.
  {
    std::ifstream in(std::string(DIT_SOURCE_DIR) + "/data/models/fmnist-dit.safetensors", std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(in), {});
    std::ofstream(dir + "/truncated.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::ifstream pt(std::string(DIT_SOURCE_DIR) + "/tests/fixtures/official/DiT-tiny.pt", std::ios::binary);
    std::string pt_bytes(std::istreambuf_iterator<char>(pt), {});
    std::ofstream(dir + "/truncated.pt", std::ios::binary) << pt_bytes.substr(0, pt_bytes.size() / 2);
  }
  struct Case {
    std::string args, expect;
  };
  std::vector<Case> cases = {
      {"image sample -m " + dir + "/missing.safetensors", "missing.safetensors"},
      {"image sample -m " + dir + "/truncated.safetensors", "truncated.safetensors"},
      {"image sample -m " + dir + "/truncated.pt --heads 2", "truncated.pt"},
      {"image sample --class 10", "--class 10 out of range"},
      {"image sample --sampler leapfrog", "leapfrog"},
      {"image sample --steps 0", "steps"},
      {"image sample --cfg-scale -1", "cfg-scale"},
      {"image sample --bogus-flag", "bogus"},
      {"image sample --device tpu", "--device tpu: expected cpu, cuda, cuda:N or auto"},
      {"image sample --dtype fp16", "--dtype fp16: runs on a GPU only"},
      {"image sample --dtype int4", "--dtype"},
  };
  // Without a GPU (a CPU-only libtorch, or no device): --device cuda fails before any work.
  if (dit::resolve_device("auto").is_cpu()) {
    cases.push_back({"image sample --device cuda --h5 " + dir + "/never.h5", "--device cuda: "});
    cases.push_back({"image sample --device cuda:1", "--device cuda:1: "});
  }
  for (const auto& c : cases) {
    auto r = run(c.args + " -o " + out + kFast);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
  auto r = run("image sample -m " + dir + "/truncated.safetensors -o " + out);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(r.output.rfind("dit: error: ", 0), 0u) << r.output;
}

// --device auto takes the CPU where there is no GPU; --timings says where it ran; --precision is
// the older name of --dtype.
TEST(Cli, DeviceAutoAndDtypeNameWhereItRan) {
  if (!dit::resolve_device("auto").is_cpu()) GTEST_SKIP() << "a GPU is present: auto takes it";
  const std::string out = temp_dir() + "/auto.png";
  auto r = run("image sample --device auto --dtype fp32 -b 2 --timings -o " + out + kFast);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("; cpu fp32 (linears fp32)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out));
  auto p = run("image sample --device cpu --precision fp32 -b 2 -o " + out + kFast);
  EXPECT_EQ(p.code, 0) << p.output;
  fs::remove(out);
}

// A published-format checkpoint (torch.save .pt, epsilon prediction, 4 latent channels): dit
// convert stores what the .pt does not say; sampling without --vae writes latents and says so;
// with --vae the PNG holds the decoded RGB images and --h5 both.
TEST(Cli, PublishedCheckpointLatentsAndVae) {
  const std::string dir = temp_dir();
  const std::string fixtures = std::string(DIT_SOURCE_DIR) + "/tests/fixtures/";
  const std::string pt = fixtures + "official/DiT-tiny.pt";
  const std::string st = dir + "/dit-tiny.safetensors";
  fs::remove(st);
  auto heads = run("convert " + pt + " " + st);
  EXPECT_NE(heads.code, 0);
  EXPECT_NE(heads.output.find("heads"), std::string::npos) << heads.output;
  EXPECT_FALSE(fs::exists(st));
  auto c = run("convert " + pt + " " + st + " --heads 2");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("epsilon-prediction"), std::string::npos) << c.output;

  // No --vae: the latents go next to -o, no PNG, exit 0; the default sampler is DDPM.
  const std::string png = dir + "/dogs.png";
  fs::remove(png);
  auto r = run("image sample -m " + st + " --class 3 -b 2 --steps 10 -o " + png);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no image decoded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ddpm"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(png));
  auto latents = dit::load_safetensors(dir + "/dogs.latents.safetensors").at("latents");
  EXPECT_EQ(latents.sizes(), torch::IntArrayRef({2, 4, 8, 8}));

  // The .pt directly with --heads, DDIM, --vae (the tiny fixture VAE: 2x upsampling), --h5.
  const std::string vae = fixtures + "vae_tiny_weights.safetensors";
  const std::string out = dir + "/decoded.png", lat = dir + "/lat.safetensors";
  auto d = run("image sample -m " + pt + " --heads 2 --vae " + vae + " --sampler ddim --steps 10 "
               "--cfg-scale 4 --class 3 -b 2 --nrow 2 -o " + out + " --latent-out " + lat
#ifdef DIT_HAVE_HDF5
               + " --h5 " + dir + "/decoded.h5"
#endif
  );
  ASSERT_EQ(d.code, 0) << d.output;
  auto image = dit::read_png(out);
  EXPECT_EQ(image.channels, 3);
  EXPECT_EQ(image.width, 2 * (32 + 2) + 2);  // two 32 px images (the tiny VAE: 8 latent px x 4)
  EXPECT_EQ(dit::load_safetensors(lat).at("latents").sizes(), torch::IntArrayRef({2, 4, 8, 8}));
#ifdef DIT_HAVE_HDF5  // --h5: the latents and the decoded images
  auto dims = [&](const char* dataset) {
    std::vector<hsize_t> d(4, 0);
    hid_t f = H5Fopen((dir + "/decoded.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return d;
    hid_t ds = H5Dopen2(f, dataset, H5P_DEFAULT);
    if (ds >= 0) {
      hid_t space = H5Dget_space(ds);
      if (H5Sget_simple_extent_ndims(space) == 4) H5Sget_simple_extent_dims(space, d.data(), nullptr);
      H5Sclose(space);
      H5Dclose(ds);
    }
    H5Fclose(f);
    return d;
  };
  EXPECT_EQ(dims("/latents/value"), (std::vector<hsize_t>{2, 4, 8, 8}));
  EXPECT_EQ(dims("/images/value"), (std::vector<hsize_t>{2, 3, 32, 32}));
#endif
  // The same seed and sampler give the same latents as the converted file.
  auto again = run("image sample -m " + st + " --sampler ddim --steps 10 --cfg-scale 4 --class 3 "
                   "-b 2 -o '' --latent-out " + dir + "/lat2.safetensors");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(torch::equal(dit::load_safetensors(lat).at("latents"),
                           dit::load_safetensors(dir + "/lat2.safetensors").at("latents")));
  // Flow samplers refuse an epsilon model.
  auto wrong = run("image sample -m " + st + " --sampler euler -b 1 -o '' --latent-out " + dir + "/never.safetensors");
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.output.find("ddpm or ddim"), std::string::npos) << wrong.output;
  EXPECT_FALSE(fs::exists(dir + "/never.safetensors"));
}

TEST(Cli, FewStepModelSamplesInOneAndTwoSteps) {
  const std::string model = dit::data_dir() + "/models/fmnist-dit-fewstep.safetensors";
  for (int steps : {1, 2}) {
    const std::string png = temp_dir() + "/fewstep.png";
    fs::remove(png);
    auto r = run("image sample -m " + model + " --sampler flowmap --steps " + std::to_string(steps) +
                 " -b 4 -t 1 -o " + png);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("NFE " + std::to_string(steps)), std::string::npos) << r.output;
    auto image = dit::read_png(png);
    ASSERT_FALSE(image.text.empty());
    // Guidance is distilled into the model: one network pass per step, no CFG.
    EXPECT_NE(image.text[0].second.find("--cfg-scale 1 "), std::string::npos) << image.text[0].second;
  }
  // The plain bundled model has no flow map: one clear line, no output.
  const std::string png = temp_dir() + "/plain-flowmap.png";
  fs::remove(png);
  auto r = run("image sample --sampler flowmap --steps 2 -b 2 -t 1 -o " + png);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("needs a step-conditioned"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(png));
}

TEST(Cli, InfoPrintsTheInferredConfig) {
  auto r = run("info");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("patch 4 (49 tokens)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("classes 10"), std::string::npos) << r.output;
  // A domain model is described from its header, not refused as "not a DiT checkpoint".
  r = run(std::string("info ") + DIT_SOURCE_DIR + "/data/models/dock-dit.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("kind: token model of the docking domain"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("token.hidden_size: 128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.step: "), std::string::npos) << r.output;
  r = run(std::string("info ") + DIT_SOURCE_DIR + "/data/models/protein-dit.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("kind: token model of the protein domain"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("token.depth: 6"), std::string::npos) << r.output;
  // A domain model's training checkpoint: the EMA weights are counted, not the model's copy and
  // the optimiser's moments beside them (6 + 6 + 12 numbers here).
  const std::string ckpt = temp_dir() + "/token-checkpoint.safetensors";
  dit::save_safetensors(ckpt,
                        {{"model.w", torch::ones({2, 3})}, {"ema.w", torch::ones({2, 3})},
                         {"adamw.m.w", torch::zeros({2, 3})}, {"adamw.v.w", torch::zeros({2, 3})}},
                        {{"dit.kind", "token"}, {"format", "dit-engine training checkpoint"}});
  r = run("info " + ckpt);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("parameters: 0.00 M (F32, 1 tensors)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("training checkpoint: counting its EMA weights"), std::string::npos) << r.output;
}

TEST(Cli, EvalPrintsATableRow) {
  const std::string report = temp_dir() + "/eval.md";
  auto r = run("image eval --sampler euler --steps 2 --per-class 3 -t 1 -o " + report);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| euler | 2 | 2 | 2 | 4 |"), std::string::npos) << r.output;  // default CFG 2: 2 passes per NFE
  EXPECT_NE(r.output.find("accuracy on the real test set"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(report));
}

TEST(Cli, HelpOnEveryCommand) {
  for (std::string cmd : {"", "image", "image sample", "image train", "image eval", "info"}) {
    auto r = run(cmd + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd;
  }
}

}  // namespace
