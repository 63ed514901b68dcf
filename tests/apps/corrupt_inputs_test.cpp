// The corrupted-input suite, through the dit CLI as a user (or a cluster script) runs it: for
// every kind of input the CLI reads (model files, --init-noise files, IDX datasets, flag
// values), damaged variants (truncated, bit-flipped, wrong dtype or units, NaN/Inf, absurd
// sizes, empty, wrong kind of file) must each give
//   - one line on stderr, "dit: error: ...", naming the file (or flag) and what is wrong,
//   - a non-zero exit code,
//   - no output file (nor its temporary) left behind.
// PNG, which no command reads, is covered in tests/domains/png_corrupt_test.cpp; the
// safetensors format itself (byte-level) in tests/io/safetensors_test.cpp.
#include <dit/image.h>
#include <dit/safetensors.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <dit/fs.h>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "corrupt_inputs.h"

namespace {

namespace fs = dit::fs;

using dit::test::CorruptInputs;
using dit::test::read_bytes;
using dit::test::Result;
using dit::test::run;
using dit::test::Variant;
using dit::test::write_bytes;

uint64_t le64(const std::string& s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(s[i])} << (8 * i);
  return v;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

const std::string kOneStep = " --steps 1 -t 1";

// ---- model files: dit info MODEL and dit image sample -m MODEL -o OUT --------------------

std::string fixture_model() {
  return std::string(DIT_TEST_FIXTURES) + "/dit_fmnist_small_weights.safetensors";
}

std::string saved(const std::string& path, const dit::TensorMap& w, const dit::Metadata& m) {
  dit::save_safetensors(path, w, m);
  return read_bytes(path);
}

TEST_F(CorruptInputs, ModelFiles) {
  const std::string good = read_bytes(fixture_model());
  ASSERT_GT(good.size(), 1000u);
  const size_t n = le64(good);
  dit::Metadata meta;
  const dit::TensorMap weights = dit::load_safetensors(fixture_model(), &meta);
  const std::string scratch = dir_ + "/scratch.safetensors";
  const auto with = [&](const std::function<void(dit::TensorMap&, dit::Metadata&)>& change) {
    dit::TensorMap w;
    for (const auto& [k, v] : weights) w[k] = v.clone();
    dit::Metadata m = meta;
    change(w, m);
    return saved(scratch, w, m);
  };
  const auto set_value = [&](const std::string& key, double value) {
    return with([&](dit::TensorMap& w, dit::Metadata&) {
      w[key] = w[key].to(torch::kFloat32);
      w[key].view(-1)[1] = value;
    });
  };
  const size_t dt = good.find("\"dtype\":\"F");  // first dtype: "F32" or "F16" -> "F99"
  ASSERT_NE(dt, std::string::npos);
  std::string flipped_len = good;
  flipped_len[7] ^= 0x40;
  std::string brace = good;
  brace[8] = '[';
  std::string nul = good;
  nul[8 + n / 2] = '\0';
  std::string png_bytes;
  {
    dit::write_png_grid(dir_ + "/grid.png", torch::rand({1, 1, 4, 4}), 1, {});
    png_bytes = read_bytes(dir_ + "/grid.png");
  }
  const std::vector<Variant> variants = {
      {"empty", "", {"shorter than the 8-byte header length"}},
      {"three bytes", "abc", {"shorter than the 8-byte header length"}},
      {"cut in header", good.substr(0, 8 + n / 2), {"beyond the end of the file"}},
      {"cut in data", good.substr(0, good.size() / 2), {"beyond the data section"}},
      {"last byte cut", good.substr(0, good.size() - 1), {"beyond the data section"}},
      {"header length bit flip", flipped_len, {"header length"}},
      {"header length zero", std::string(8, '\0') + good.substr(8), {"not valid JSON"}},
      {"JSON brace flipped", brace, {"not valid JSON"}},
      {"NUL in header", nul, {"NUL byte"}},
      {"a PNG file", png_bytes, {"header length"}},
      {"unknown dtype", good.substr(0, dt) + "\"dtype\":\"F99" + good.substr(dt + 12),
       {"unknown dtype 'F99'"}},
      {"NaN weight", set_value("blocks.0.mlp.fc1.bias", std::numeric_limits<double>::quiet_NaN()),
       {"blocks.0.mlp.fc1.bias", "NaN"}},
      {"+Inf weight", set_value("pos_embed", std::numeric_limits<double>::infinity()),
       {"pos_embed", "Inf"}},
      {"-Inf weight", set_value("final_layer.linear.weight", -std::numeric_limits<double>::infinity()),
       {"final_layer.linear.weight", "Inf"}},
      {"integer weights", with([](dit::TensorMap& w, dit::Metadata&) {
         for (auto& [k, v] : w) v = (v * 1000).to(torch::kShort);
       }), {"integer dtype"}},
      {"BOOL weight", with([](dit::TensorMap& w, dit::Metadata&) {
         w["t_embedder.mlp.0.bias"] = w["t_embedder.mlp.0.bias"] > 0;
       }), {"t_embedder.mlp.0.bias", "integer dtype"}},
      {"missing pos_embed", with([](dit::TensorMap& w, dit::Metadata&) { w.erase("pos_embed"); }),
       {"pos_embed", "missing"}},
      {"missing block tensor", with([](dit::TensorMap& w, dit::Metadata&) {
         w.erase("blocks.2.attn.proj.weight");
       }), {"blocks.2.attn.proj.weight", "missing"}},
      {"unexpected tensor", with([](dit::TensorMap& w, dit::Metadata&) {
         w["blocks.0.attn.q_norm.weight"] = torch::ones({32});
       }), {"unexpected tensor 'blocks.0.attn.q_norm.weight'"}},
      {"transposed weight", with([](dit::TensorMap& w, dit::Metadata&) {
         w["blocks.1.mlp.fc1.weight"] = w["blocks.1.mlp.fc1.weight"].t().contiguous();
       }), {"blocks.1.mlp.fc1.weight", "expected"}},
      {"absurd zero-sized tensor", with([](dit::TensorMap& w, dit::Metadata&) {
         w["t_embedder.mlp.2.weight"] = torch::zeros({0, int64_t{1} << 30});
       }), {"t_embedder.mlp.2.weight", "[0, 1073741824]"}},
      {"absurd patch", with([](dit::TensorMap& w, dit::Metadata&) {
         w["x_embedder.proj.weight"] = torch::zeros({96, 1, 0, 0});
       }), {"x_embedder.proj.weight", "outside"}},
      {"non-square patch", with([](dit::TensorMap& w, dit::Metadata&) {
         w["x_embedder.proj.weight"] = torch::zeros({96, 1, 4, 5});
       }), {"non-square"}},
      {"heads not dividing", with([](dit::TensorMap&, dit::Metadata& m) { m["dit.num_heads"] = "5"; }),
       {"divisible by num_heads 5"}},
      {"heads not a number", with([](dit::TensorMap&, dit::Metadata& m) { m["dit.num_heads"] = "three"; }),
       {"dit.num_heads='three'"}},
      {"empty label table", with([](dit::TensorMap& w, dit::Metadata&) {
         w["y_embedder.embedding_table.weight"] = torch::zeros({0, 96});
       }), {"num_classes"}},
      {"a directory", "", {"not a regular file"}, true},
      {"absent", "", {"No such file"}, false, true},
  };
  // `dit info` reads shapes and metadata only: these damages show when the weights load.
  const std::set<std::string> load_only = {"NaN weight", "+Inf weight", "-Inf weight",
                                           "integer weights", "BOOL weight", "missing block tensor",
                                           "unexpected tensor", "transposed weight",
                                           "absurd zero-sized tensor"};
  const std::string out = dir_ + "/out.png";
  for (const auto& v : variants) {
    const std::string path = dir_ + "/model.safetensors";
    place(v, path);
    if (!load_only.count(v.name)) expect_clean_failure(v.name, "info " + path, path, v.expect, {});
    expect_clean_failure(v.name, "image sample -b 2 -m " + path + " -o " + out + kOneStep, path,
                         v.expect, {out});
  }
  // The undamaged file works through the same commands (the variants fail for their damage).
  ASSERT_EQ(run("image sample -b 2 -m " + fixture_model() + " -o " + out + kOneStep).code, 0);
  EXPECT_TRUE(fs::exists(out));
  std::cout << "[ corrupt  ] model files: " << variants.size() << " damaged variants, "
            << tried_ << " CLI runs\n";
  EXPECT_GE(variants.size(), 20u);
}

// ---- --init-noise files -----------------------------------------------------------------

TEST_F(CorruptInputs, InitNoiseFiles) {
  const std::string scratch = dir_ + "/scratch.safetensors";
  torch::manual_seed(3);
  const auto noise_file = [&](const torch::Tensor& t, const std::string& name = "noise") {
    return saved(scratch, {{name, t}}, {});
  };
  const auto good_noise = [] { return torch::randn({2, 1, 28, 28}); };
  const std::string good = noise_file(good_noise());
  const size_t n = le64(good);
  const auto with_value = [&](double v) {
    auto t = good_noise();
    t[1][0][5][7] = v;
    return noise_file(t);
  };
  std::string f33 = good;
  f33.replace(f33.find("\"F32\""), 5, "\"F33\"");
  std::string garbage = good;
  for (size_t i = 8; i < 8 + n; i += 3) garbage[i] = '#';
  std::string flipped = good;
  flipped[3] ^= 0x01;
  const std::vector<Variant> variants = {
      {"empty", "", {"shorter than the 8-byte"}},
      {"truncated", good.substr(0, good.size() / 2), {"beyond the data section"}},
      {"header cut", good.substr(0, 8 + n / 2), {"beyond the end of the file"}},
      {"length bit flip", flipped, {"header length"}},
      {"header garbage", garbage, {"not valid JSON"}},
      {"unknown dtype", f33, {"unknown dtype 'F33'"}},
      {"wrong tensor name", noise_file(good_noise(), "x"), {"tensor 'noise' missing"}},
      {"batch 3", noise_file(torch::randn({3, 1, 28, 28})), {"[3, 1, 28, 28]", "expected [2, 1, 28, 28]"}},
      {"3 channels", noise_file(torch::randn({2, 3, 28, 28})), {"[2, 3, 28, 28]"}},
      {"32x32", noise_file(torch::randn({2, 1, 32, 32})), {"[2, 1, 32, 32]"}},
      {"rank 3", noise_file(torch::randn({2, 28, 28})), {"[2, 28, 28]"}},
      {"scalar", noise_file(torch::tensor(0.5f)), {"has shape []"}},
      {"zero images", noise_file(torch::randn({0, 1, 28, 28})), {"[0, 1, 28, 28]"}},
      {"absurd zero-sized", noise_file(torch::zeros({0, int64_t{1} << 40})), {"[0, 1099511627776]"}},
      {"NaN", with_value(std::numeric_limits<double>::quiet_NaN()), {"NaN or Inf"}},
      {"+Inf", with_value(std::numeric_limits<double>::infinity()), {"NaN or Inf"}},
      {"-Inf", with_value(-std::numeric_limits<double>::infinity()), {"NaN or Inf"}},
      {"F64 beyond float", noise_file(good_noise().to(torch::kDouble) * 1e300), {"NaN or Inf"}},
      {"I64 noise", noise_file(torch::randint(-3, 3, {2, 1, 28, 28}, torch::kLong)), {"dtype Long", "floating point"}},
      {"U8 noise", noise_file(torch::randint(0, 255, {2, 1, 28, 28}, torch::kByte)), {"dtype Byte"}},
      {"BOOL noise", noise_file(torch::randn({2, 1, 28, 28}) > 0), {"dtype Bool"}},
      {"pixel units", noise_file(torch::rand({2, 1, 28, 28}) * 255), {"standard normal"}},
      {"one outlier", with_value(1e6), {"values up to 1000000"}},
      {"a directory", "", {}, true},
      {"absent", "", {}, false, true},
  };
  const std::string out = dir_ + "/out.png", h5 = dir_ + "/out.h5";
  for (const auto& v : variants) {
    const std::string path = dir_ + "/noise.safetensors";
    place(v, path);
    expect_clean_failure(v.name,
                         "image sample -b 2 --init-noise " + path + " -o " + out + " --h5 " + h5 + kOneStep,
                         path, v.expect, {out, h5});
  }
  write_bytes(dir_ + "/noise.safetensors", good);
  ASSERT_EQ(run("image sample -b 2 --init-noise " + dir_ + "/noise.safetensors -o " + out + kOneStep).code, 0);
  std::cout << "[ corrupt  ] --init-noise files: " << variants.size() << " damaged variants\n";
  EXPECT_GE(variants.size(), 20u);
}

// ---- IDX datasets: dit image train --data-root DIR ----------------------------------------

TEST_F(CorruptInputs, IdxDatasets) {
  // Eight real Fashion-MNIST test images and labels, as raw IDX.
  const auto images = dit::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
                          .narrow(0, 0, 8).contiguous();
  const auto labels = dit::read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
                          .narrow(0, 0, 8).contiguous();
  const auto idx = [](const std::vector<uint32_t>& dims, const std::string& data) {
    std::string s("\0\0\x08", 3);
    s += static_cast<char>(dims.size());
    for (auto d : dims) s += be32(d);
    return s + data;
  };
  const std::string pixels(reinterpret_cast<const char*>(images.data_ptr<uint8_t>()), 8 * 784);
  const std::string label_bytes(reinterpret_cast<const char*>(labels.data_ptr<uint8_t>()), 8);
  const std::string img = idx({8, 28, 28}, pixels), lab = idx({8}, label_bytes);
  const auto gz = [&](const std::string& raw) {  // system gzip (always present on Debian)
    const std::string p = dir_ + "/gz_scratch";
    write_bytes(p, raw);
    EXPECT_EQ(std::system(("gzip -n -f " + p).c_str()), 0);
    return read_bytes(p + ".gz");
  };
  const std::string img_gz = gz(img);
  std::string gz_flip = img_gz;
  gz_flip[gz_flip.size() / 2] ^= 0x10;
  std::string label10 = label_bytes, label255 = label_bytes;
  label10[3] = 10;
  label255[5] = static_cast<char>(255);

  struct Case {
    Variant v;
    bool labels_file = false;  // damage the labels (else the images)
    bool gzipped = false;      // store as NAME.gz
  };
  const std::vector<Case> cases = {
      {{"empty", "", {"IDX header truncated (0 bytes)"}}},
      {{"three bytes", img.substr(0, 3), {"IDX header truncated (3 bytes)"}}},
      {{"bad magic", "\x01" + img.substr(1), {"bad IDX magic"}}},
      {{"float type code", img.substr(0, 2) + "\x0d" + img.substr(3), {"type code 0x0d"}}},
      {{"zero dimensions", img.substr(0, 3) + std::string(1, '\0') + img.substr(4), {"0 dimensions"}}},
      {{"five dimensions", img.substr(0, 3) + "\x05" + img.substr(4), {"5 dimensions"}}},
      {{"dimensions cut", img.substr(0, 9), {"dimension sizes truncated"}}},
      {{"zero-sized dimension", idx({8, 0, 28}, ""), {"absurd size 0"}}},
      {{"absurd dimension", idx({0x7fffffff, 28, 28}, pixels), {"absurd size 2147483647"}}},
      {{"huge count, little data", idx({1u << 28, 28, 28}, pixels), {"too large"}}},
      {{"large count, little data", idx({1u << 20, 28, 28}, pixels), {"need 822083584"}}},
      {{"data cut", img.substr(0, img.size() - 1), {"need 6272"}}},
      {{"trailing byte", img + "x", {"more than 6272"}}},
      {{"gzip cut", img_gz.substr(0, img_gz.size() / 2), {"gzip"}}, false, true},
      {{"gzip bit flip", gz_flip, {}}, false, true},  // a data or CRC error, or bad sizes
      {{"not gzip, .gz name", "\x01\x02garbage", {"bad IDX magic"}}, false, true},
      {{"2-d images", idx({8, 784}, pixels), {"expected [N, H, W] images"}}},
      {{"32x32 images", idx({8, 32, 32}, pixels + std::string(8 * (1024 - 784), '\0')),
        {"32x32", "input size 28"}}},
      {{"images a directory", "", {}, true}},
      {{"images absent", "", {"not found"}, false, true}},
      {{"7 labels for 8 images", idx({7}, label_bytes.substr(0, 7)), {"7 labels for 8 images"}}, true},
      {{"label 10", idx({8}, label10), {"label 10 out of range"}}, true},
      {{"label 255", idx({8}, label255), {"label 255 out of range"}}, true},
      {{"2-d labels", idx({8, 1}, label_bytes), {"labels for 8 images"}}, true},
      {{"labels bad magic", "\x07" + lab.substr(1), {"bad IDX magic"}}, true},
      {{"labels absent", "", {"not found"}, false, true}, true},
  };
  for (const auto& c : cases) {
    const std::string root = dir_ + "/data";
    fs::remove_all(root);
    fs::create_directories(root);
    write_bytes(root + "/train-images-idx3-ubyte", img);
    write_bytes(root + "/train-labels-idx1-ubyte", lab);
    const std::string stem = root + (c.labels_file ? "/train-labels-idx1-ubyte" : "/train-images-idx3-ubyte");
    fs::remove(stem);
    const std::string path = stem + (c.gzipped ? ".gz" : "");
    place(c.v, path);
    // The error names the damaged file, or (absent) the folder it was looked for in.
    const std::string named = c.v.absent ? root : c.v.name == "32x32 images" ? root : path;
    const std::string run_dir = dir_ + "/run";
    expect_clean_failure(c.v.name,
                         "image train --data-root " + root + " -o " + run_dir +
                             " --steps 1 -b 2 --hidden 32 --depth 1 --heads 2 -t 1",
                         named, c.v.expect, {run_dir});
  }
  // The undamaged set trains (so the variants fail for their damage alone).
  const std::string root = dir_ + "/data";
  write_bytes(root + "/train-images-idx3-ubyte", img);
  write_bytes(root + "/train-labels-idx1-ubyte", lab);
  const Result ok = run("image train --data-root " + root + " -o " + dir_ + "/run --steps 1 -b 2 "
                        "--hidden 32 --depth 1 --heads 2 -t 1");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(dir_ + "/run/model.safetensors"));
  std::cout << "[ corrupt  ] IDX files: " << cases.size() << " damaged variants\n";
  EXPECT_GE(cases.size(), 20u);
}

// ---- flag values ---------------------------------------------------------------------------

TEST_F(CorruptInputs, FlagValues) {
  struct Case {
    std::string args, expect;
  };
  const std::string missing_dir = dir_ + "/no/such/dir";
  const std::vector<Case> cases = {
      {"--steps 0", "--steps"},
      {"--steps -3", "--steps"},
      {"--steps three", "--steps"},
      {"--steps 10001", "--steps"},
      {"-b 0", "--batch-count"},
      {"-b 100001", "--batch-count"},
      {"-b 1.5", "--batch-count"},
      {"--cfg-scale nan", "scale = nan"},
      {"--cfg-scale inf", "--cfg-scale"},
      {"--cfg-scale -1", "--cfg-scale"},
      {"--cfg-interval 0.8,0.2", "t_lo = 0.8, t_hi = 0.2"},
      {"--cfg-interval 0.5", "--cfg-interval"},
      {"--cfg-interval 2,3", "--cfg-interval"},
      {"--cfg-rescale 1.5", "--cfg-rescale"},
      {"--cfg-rescale nan", "rescale = nan"},
      {"--schedule cosine", "--schedule"},
      {"--schedule shifted --shift 0", "--shift"},
      {"--schedule shifted --shift nan", "shift = nan"},
      {"--sampler dopri5 --atol 0", "--atol"},
      {"--sampler dopri5 --atol nan", "atol = nan"},
      {"--sampler euler-maruyama --diffusion -1", "--diffusion"},
      {"--sampler euler-maruyama --diffusion nan", "diffusion = nan"},
      {"--sampler leapfrog", "leapfrog"},
      {"--class -1", "--class -1 out of range"},
      {"--class 10", "--class 10 out of range"},
      {"--classes 1,x,2", "--classes"},
      {"--chunk 0", "--chunk"},
      {"--seed minus-one", "--seed"},
      {"--threads many", "--threads"},
      {"--bogus-flag", "bogus"},
      {"-o " + missing_dir + "/grid.png", missing_dir},
      {"--h5 " + missing_dir + "/x.h5", missing_dir},
  };
  const std::string out = dir_ + "/out.png";
  for (const auto& c : cases) {
    const bool own_output = c.args.rfind("-o ", 0) == 0;
    expect_clean_failure(c.args, "image sample -b 2 " + c.args + (own_output ? "" : " -o " + out) + kOneStep,
                         "", {c.expect}, {out});
  }
  // Training flags: damaged values fail before any output directory is created.
  const std::string run_dir = dir_ + "/run";
  for (const std::string args : {"--lr nan", "--lr -1", "--ema 1", "--ema nan", "--weight-decay nan",
                                 "--grad-clip nan", "--label-dropout 2", "--hidden 30",
                                 "--heads 7", "--depth 5000", "--hidden 100000000", "--config DiT-Q/2",
                                 "--storage f8", "--dataset cifar"}) {
    expect_clean_failure(args, "image train " + args + " -o " + run_dir + " --steps 1 -t 1", "",
                         {}, {run_dir});
  }
  std::cout << "[ corrupt  ] flag values: " << tried_ << " damaged values\n";
}

}  // namespace
