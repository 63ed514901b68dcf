#pragma once
// Shared by the training tests: a small DiT on real Fashion-MNIST images (16 tokens, 2 blocks;
// a training step takes a few milliseconds) and its default options.
#include <dit/image.h>
#include <dit/train.h>

#include <dit/fs.h>
#include <string>

namespace dit_test {

inline dit::DiTConfig small_config() {
  dit::DiTConfig c;
  c.input_size = 28, c.patch_size = 7, c.in_channels = 1, c.hidden_size = 64, c.depth = 2,
  c.num_heads = 2, c.num_classes = 10, c.learn_sigma = false;
  return c;
}

// The first n images of the test split, in model space.
inline dit::TrainingSet fashion_subset(int64_t n) {
  auto ds = dit::load_image_dataset("fashion-mnist", "test");
  return {dit::images_to_model_space(ds.images.narrow(0, 0, n)), ds.labels.narrow(0, 0, n)};
}

inline dit::TrainOptions small_options(int64_t steps) {
  dit::TrainOptions o;
  o.steps = steps, o.batch_size = 32, o.lr = 1e-3, o.warmup_steps = 5, o.seed = 7;
  return o;
}

inline std::string temp_path(const std::string& prefix, const std::string& name) {
  return (dit::fs::temp_directory_path() / (prefix + name)).string();
}

}  // namespace dit_test
