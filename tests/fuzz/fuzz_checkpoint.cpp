// libFuzzer target: training checkpoints as `dit image train --resume` reads them:
// FlowMatchingTrainer::load_checkpoint (safetensors, train.step / train.options metadata, the
// model config inferred from shapes, model.*, ema.*, adamw.m.*, adamw.v.* tensors: names,
// shapes, dtypes, finiteness), then one training step from the loaded state.
//   DIT_FUZZ_WRITE_SEED=path fuzz_checkpoint   writes a real checkpoint of the target's tiny
//                                              model (3 steps trained) and exits: the seed.
#include <dit/model.h>
#include <dit/train.h>

#include <cstdlib>

#include "fuzz_input.h"

namespace {

dit::DiTConfig tiny() {
  dit::DiTConfig c;
  c.input_size = 4, c.patch_size = 2, c.in_channels = 1, c.hidden_size = 8, c.depth = 1,
  c.num_heads = 2, c.mlp_ratio = 2.0, c.num_classes = 2, c.learn_sigma = false;
  return c;
}

dit::TrainOptions options() {
  dit::TrainOptions o;
  o.steps = 100, o.batch_size = 4, o.lr = 1e-3, o.warmup_steps = 2, o.seed = 5;
  return o;
}

dit::FlowMatchingTrainer make_trainer() {
  torch::manual_seed(1);
  dit::TrainingSet data{torch::randn({8, 1, 4, 4}), torch::arange(8, torch::kLong) % 2};
  return dit::FlowMatchingTrainer(dit::DiT(tiny()), data, options());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  if (const char* seed = std::getenv("DIT_FUZZ_WRITE_SEED")) {
    auto trainer = make_trainer();
    for (int i = 0; i < 3; ++i) trainer.step();
    trainer.save_checkpoint(seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  auto trainer = make_trainer();
  bool loaded = false;
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    trainer.load_checkpoint(file.path());
    loaded = true;
  });
  if (!loaded) return 0;
  if (trainer.current_step() < 0) std::abort();
  // A loaded checkpoint trains on. Finite but huge weights can make the step's loss
  // non-finite: that is the trainer's own clean dit::Error about the step (it names the step,
  // not the file, as `dit image train` prints it), not a checkpoint-parsing failure.
  try {
    if (trainer.current_step() < trainer.options().steps) (void)trainer.step();
  } catch (const dit::Error&) {
  }
  return 0;
}
