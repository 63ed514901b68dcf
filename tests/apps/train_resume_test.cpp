// `dit image train` faults, through the CLI:
//   - damaged training checkpoints given to --resume: one line naming the checkpoint and what is
//     wrong, a non-zero exit, and the run's files (checkpoint, exported model) left as they were;
//   - a loss that turns non-finite (a learning rate of 1e30): training stops with a clear message
//     and a non-zero exit, and keeps the last good checkpoint (finite, resumable).
#include <dit/image.h>
#include <dit/safetensors.h>

#include <functional>
#include <limits>

#include "corrupt_inputs.h"

namespace {

using dit::test::CorruptInputs;
using dit::test::read_bytes;
using dit::test::Result;
using dit::test::run;
using dit::test::Variant;
using dit::test::write_bytes;
namespace fs = dit::fs;

// Eight real Fashion-MNIST test images as an IDX training set in `root`.
void write_small_dataset(const std::string& root) {
  fs::create_directories(root);
  const auto idx = [](const torch::Tensor& t) {
    std::string s("\0\0\x08", 3);
    s += static_cast<char>(t.dim());
    for (auto d : t.sizes())
      for (int shift : {24, 16, 8, 0}) s += static_cast<char>((static_cast<uint32_t>(d) >> shift) & 0xff);
    return s + std::string(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), t.numel());
  };
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  write_bytes(root + "/train-images-idx3-ubyte",
              idx(dit::read_idx(dir + "t10k-images-idx3-ubyte.gz").narrow(0, 0, 8).contiguous()));
  write_bytes(root + "/train-labels-idx1-ubyte",
              idx(dit::read_idx(dir + "t10k-labels-idx1-ubyte.gz").narrow(0, 0, 8).contiguous()));
}

const std::string kSmall = " -b 2 --hidden 32 --depth 1 --heads 2 -t 1 --seed 4";

int64_t checkpoint_step(const std::string& path) {
  return std::stoll(dit::SafeTensorsFile(path).metadata().at("train.step"));
}

TEST_F(CorruptInputs, TrainCheckpoints) {
  const std::string root = dir_ + "/data", out = dir_ + "/run";
  write_small_dataset(root);
  const std::string train = "image train --data-root " + root + " -o " + out + kSmall;
  const Result first = run(train + " --steps 2 --checkpoint-every 1");
  ASSERT_EQ(first.code, 0) << first.output;
  const std::string ckpt = out + "/checkpoint.safetensors", model = out + "/model.safetensors";
  const std::string good = read_bytes(ckpt), good_model = read_bytes(model);
  ASSERT_EQ(checkpoint_step(ckpt), 2);

  dit::Metadata meta;
  const dit::TensorMap tensors = dit::load_safetensors(ckpt, &meta);
  const std::string scratch = dir_ + "/scratch.safetensors";
  const auto with = [&](const std::function<void(dit::TensorMap&, dit::Metadata&)>& change) {
    dit::TensorMap t;
    for (const auto& [k, v] : tensors) t[k] = v.clone();
    dit::Metadata m = meta;
    change(t, m);
    dit::save_safetensors(scratch, t, m);
    return read_bytes(scratch);
  };
  const auto set_meta = [&](const std::string& key, const std::string& value) {
    return with([&](dit::TensorMap&, dit::Metadata& m) { m[key] = value; });
  };
  const auto poke = [&](const std::string& key, double value) {
    return with([&](dit::TensorMap& t, dit::Metadata&) { t.at(key).view(-1)[0] = value; });
  };
  std::string options = meta.at("train.options");
  const auto seed_at = options.find("\"seed\":") + 7;
  const std::string other_seed = options.substr(0, seed_at) + "5" + options.substr(options.find_first_of(",}", seed_at));
  std::string len_flip = good;
  len_flip[6] ^= 0x01;
  std::string brace = good;
  brace[8] = '[';
  const size_t dt = good.find("\"dtype\":\"F32\"");
  ASSERT_NE(dt, std::string::npos);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<Variant> variants = {
      {"empty", "", {"shorter than the 8-byte header length"}},
      {"cut in half", good.substr(0, good.size() / 2), {"beyond"}},
      {"last byte cut", good.substr(0, good.size() - 1), {"beyond the data section"}},
      {"header length bit flip", len_flip, {"header length"}},
      {"header not JSON", brace, {"not valid JSON"}},
      {"unknown dtype", good.substr(0, dt) + "\"dtype\":\"F31\"" + good.substr(dt + 13), {"unknown dtype 'F31'"}},
      {"the exported model, not a checkpoint", good_model, {"model.x_embedder.proj.weight", "missing"}},
      {"train.step missing", with([](dit::TensorMap&, dit::Metadata& m) { m.erase("train.step"); }),
       {"train.step' missing"}},
      {"train.step negative", set_meta("train.step", "-3"), {"train.step='-3'"}},
      {"train.step not a number", set_meta("train.step", "two"), {"train.step='two'"}},
      {"train.step absurd", set_meta("train.step", "99999999999999999999999"), {"not a step count"}},
      {"another seed", set_meta("train.options", other_seed), {"checkpoint seed 5 differs"}},
      {"another model size", with([](dit::TensorMap& t, dit::Metadata&) {
         for (auto& [k, v] : t)
           if (v.dim() >= 1 && v.size(-1) == 32) v = torch::zeros(v.sizes().vec()).narrow(-1, 0, 16).contiguous();
       }), {}},
      {"NaN model weight", poke("model.blocks.0.mlp.fc1.bias", nan), {"blocks.0.mlp.fc1.bias", "NaN or Inf"}},
      {"+Inf EMA weight", poke("ema.pos_embed", inf), {"NaN or Inf"}},
      {"NaN AdamW moment", poke("adamw.m.blocks.0.attn.qkv.weight", nan), {"adamw.m.blocks.0.attn.qkv.weight", "not finite"}},
      {"-Inf AdamW variance", poke("adamw.v.final_layer.linear.bias", -inf), {"adamw.v.final_layer.linear.bias", "not finite"}},
      {"AdamW moment missing", with([](dit::TensorMap& t, dit::Metadata&) { t.erase("adamw.v.x_embedder.proj.bias"); }),
       {"adamw.v.x_embedder.proj.bias' is missing"}},
      {"AdamW moment transposed", with([](dit::TensorMap& t, dit::Metadata&) {
         auto& v = t.at("adamw.m.blocks.0.mlp.fc1.weight");
         v = v.t().contiguous();
       }), {"adamw.m.blocks.0.mlp.fc1.weight' has the wrong shape"}},
      {"AdamW moment as integers", with([](dit::TensorMap& t, dit::Metadata&) {
         auto& v = t.at("adamw.v.blocks.0.mlp.fc2.bias");
         v = v.to(torch::kInt);
       }), {"adamw.v.blocks.0.mlp.fc2.bias", "not finite floating point"}},
      {"model tensor missing", with([](dit::TensorMap& t, dit::Metadata&) { t.erase("model.blocks.0.attn.proj.bias"); }),
       {"blocks.0.attn.proj.bias"}},
      {"a directory", "", {"not a regular file"}, true},
      {"absent", "", {"does not exist"}, false, true},
  };
  for (const auto& v : variants) {
    place(v, ckpt);
    write_bytes(model, good_model);
    expect_clean_failure(v.name, train + " --steps 3 --resume", ckpt, v.expect, {});
    // Nothing rewritten: the damaged checkpoint stays as it was, the exported model too.
    if (!v.is_dir && !v.absent) {
      EXPECT_TRUE(read_bytes(ckpt) == v.bytes) << v.name << ": the checkpoint was rewritten";
    }
    EXPECT_TRUE(read_bytes(model) == good_model) << v.name << ": the exported model was rewritten";
    for (const auto& e : fs::directory_iterator(out))
      EXPECT_NE(e.path().extension(), ".tmp") << v.name << ": " << e.path();
  }
  // The undamaged checkpoint resumes through the same command.
  fs::remove_all(ckpt);
  write_bytes(ckpt, good);
  const Result ok = run(train + " --steps 3 --resume");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_EQ(checkpoint_step(ckpt), 3);
  std::cout << "[ corrupt  ] training checkpoints: " << variants.size() << " damaged variants\n";
  EXPECT_GE(variants.size(), 20u);
}

TEST_F(CorruptInputs, NonFiniteLossStopsTrainingAndKeepsLastGoodCheckpoint) {
  const std::string root = dir_ + "/data", out = dir_ + "/run";
  write_small_dataset(root);
  const std::string train = "image train --data-root " + root + " -o " + out + kSmall +
                            " --warmup 0 --grad-clip 0 --checkpoint-every 1";
  // AdamW moves every weight by about lr per step: 1e30 overflows the next forward pass.
  const Result r = run(train + " --steps 50 --lr 1e30");
  ASSERT_NE(r.code, 0) << r.output;
  const std::string last = r.output.substr(r.output.rfind('\n', r.output.size() - 2) + 1);
  EXPECT_EQ(last.rfind("dit: error: training step ", 0), 0u) << r.output;
  EXPECT_NE(last.find("non-finite loss"), std::string::npos) << r.output;
  const std::string ckpt = out + "/checkpoint.safetensors";
  ASSERT_TRUE(fs::exists(ckpt)) << r.output;
  const int64_t step = checkpoint_step(ckpt);
  // The error names the step that failed; the checkpoint is the one before it.
  EXPECT_NE(last.find("training step " + std::to_string(step) + ":"), std::string::npos)
      << "checkpoint at step " << step << "\n" << r.output;
  EXPECT_GE(step, 1);
  EXPECT_LT(step, 50);
  for (const auto& [name, t] : dit::load_safetensors(ckpt))
    if (t.is_floating_point()) {
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
    }
  EXPECT_EQ(checkpoint_step(out + "/model.safetensors"), step);
  for (const auto& e : fs::directory_iterator(out)) EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  // It is a valid checkpoint: --resume loads it (no steps left to run: it is saved again).
  const Result resumed = run(train + " --steps " + std::to_string(step) + " --resume");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(checkpoint_step(ckpt), step);
  std::cout << "[ numerics ] lr 1e30: stopped at step " << step << ", checkpoint of step " << step
            << " kept and resumable\n";
}

}  // namespace
