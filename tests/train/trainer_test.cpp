// Flow-matching trainer: loss decreases, resume is bit-identical, bad steps leave weights alone.
#include <dit/error.h>
#include <dit/image.h>
#include <dit/train.h>
#include <gtest/gtest.h>

#include <dit/fs.h>

#include "tests/train/small_training.h"

namespace {

using dit_test::fashion_subset;
using dit_test::small_config;
using dit_test::small_options;

dit::DiT fresh_model(uint64_t seed = 3) {
  torch::manual_seed(seed);
  return dit::DiT(small_config());
}

std::string trainer_temp_path(const std::string& name) { return dit_test::temp_path("dit_train_test_", name); }

TEST(Trainer, LossDecreasesOnSmallSubset) {
  dit::set_threads(1);
  dit::FlowMatchingTrainer trainer(fresh_model(), fashion_subset(256), small_options(80));
  double first = 0, last = 0;
  for (int i = 0; i < 80; ++i) {
    double loss = trainer.step();
    ASSERT_TRUE(std::isfinite(loss));
    if (i < 10) first += loss / 10;
    if (i >= 70) last += loss / 10;
  }
  // Zero-initialised output starts at E|eps - x0|^2 (about 1.6 for Fashion-MNIST in [-1, 1]).
  EXPECT_GT(first, 1.2);
  EXPECT_LT(last, 0.75 * first) << "first 10 steps " << first << ", last 10 " << last;
}

TEST(Trainer, ResumeIsBitIdenticalToUninterruptedRun) {
  dit::set_threads(1);
  auto data = fashion_subset(128);
  dit::FlowMatchingTrainer straight(fresh_model(), data, small_options(6));
  for (int i = 0; i < 6; ++i) straight.step();

  const std::string ckpt = trainer_temp_path("resume.safetensors");
  {
    dit::FlowMatchingTrainer first_half(fresh_model(), data, small_options(6));
    for (int i = 0; i < 3; ++i) first_half.step();
    first_half.save_checkpoint(ckpt);
  }
  // A differently initialised model: everything must come from the checkpoint.
  dit::FlowMatchingTrainer resumed(fresh_model(99), data, small_options(6));
  resumed.load_checkpoint(ckpt);
  EXPECT_EQ(resumed.current_step(), 3);
  for (int i = 0; i < 3; ++i) resumed.step();

  auto a = dit::state_dict(*straight.model()), b = dit::state_dict(*resumed.model());
  for (auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << "model." << name;
  auto ea = dit::state_dict(*straight.ema()), eb = dit::state_dict(*resumed.ema());
  for (auto& [name, t] : ea) EXPECT_TRUE(torch::equal(t, eb.at(name))) << "ema." << name;
  dit::fs::remove(ckpt);
}

TEST(Trainer, BatchesArePureFunctionsOfSeedAndStep) {
  auto data = fashion_subset(100);
  dit::FlowMatchingTrainer a(fresh_model(), data, small_options(10));
  dit::FlowMatchingTrainer b(fresh_model(), data, small_options(10));
  for (int64_t s : {0, 3, 7}) {  // 32 per batch over 100 images: step 3 wraps an epoch
    EXPECT_TRUE(torch::equal(a.batch(s).x0, b.batch(s).x0));
    EXPECT_TRUE(torch::equal(a.batch(s).inputs.labels, b.batch(s).inputs.labels));
  }
  // Every image appears exactly once per epoch (first three batches = 96 distinct images).
  auto labels = torch::cat({a.batch(0).x0, a.batch(1).x0, a.batch(2).x0});
  EXPECT_EQ(std::get<0>(torch::_unique(labels.flatten(1).sum(1))).numel(), 96);
}

TEST(Trainer, NonFiniteLossThrowsAndKeepsWeights) {
  auto data = fashion_subset(64);
  data.images[5].fill_(std::numeric_limits<float>::quiet_NaN());
  auto opts = small_options(4);
  opts.batch_size = 64;
  dit::FlowMatchingTrainer trainer(fresh_model(), data, opts);
  auto before = dit::state_dict(*trainer.model());
  std::map<std::string, torch::Tensor> copy;
  for (auto& [k, v] : before) copy[k] = v.clone();
  EXPECT_THROW(trainer.step(), dit::Error);
  EXPECT_EQ(trainer.current_step(), 0);
  for (auto& [k, v] : dit::state_dict(*trainer.model())) EXPECT_TRUE(torch::equal(v, copy[k])) << k;
}

TEST(Trainer, WarmupAndCosineSchedule) {
  auto opts = small_options(110);
  opts.warmup_steps = 10;
  dit::FlowMatchingTrainer t(fresh_model(), fashion_subset(32), opts);
  EXPECT_DOUBLE_EQ(t.learning_rate(0), 1e-4);
  EXPECT_DOUBLE_EQ(t.learning_rate(9), 1e-3);
  EXPECT_DOUBLE_EQ(t.learning_rate(10), 1e-3);
  EXPECT_NEAR(t.learning_rate(110), 1e-4, 1e-12);  // cosine ends at 10% of the peak
}

TEST(Trainer, BadOptionsAndDataAreNamed) {
  auto opts = small_options(10);
  opts.t_sampling = "gamma";
  try {
    dit::FlowMatchingTrainer t(fresh_model(), fashion_subset(32), opts);
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("t_sampling"), std::string::npos) << e.what();
  }
  auto data = fashion_subset(32);
  data.labels[0] = 12;
  EXPECT_THROW(dit::FlowMatchingTrainer(fresh_model(), data, small_options(10)), dit::Error);
}

TEST(Trainer, CheckpointOfAnotherModelIsRefused) {
  const std::string ckpt = trainer_temp_path("other.safetensors");
  auto data = fashion_subset(32);
  dit::FlowMatchingTrainer a(fresh_model(), data, small_options(2));
  a.save_checkpoint(ckpt);
  auto c = small_config();
  c.depth = 3;
  torch::manual_seed(0);
  dit::FlowMatchingTrainer b(dit::DiT(c), data, small_options(2));
  try {
    b.load_checkpoint(ckpt);
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(ckpt), std::string::npos) << e.what();
  }
  dit::fs::remove(ckpt);
}

}  // namespace
