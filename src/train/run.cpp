// run_training (dit/train.h): the one loop around FlowMatchingTrainer::step that every domain's
// train command uses, and the rotation augmentation of point-set domains.
#include <dit/error.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <dit/runtime.h>
#include <dit/fs.h>

namespace dit {


TrainRunResult run_training(FlowMatchingTrainer& trainer, const TrainRun& run) {
  if (run.checkpoint.empty()) throw Error("training: no checkpoint path");
  if (run.checkpoint_every < 1)
    throw Error(fmt::format("training: checkpoint_every must be positive (got {})", run.checkpoint_every));
  if (run.resume) {
    if (!dit::fs::exists(run.checkpoint))
      throw Error(fmt::format("--resume: {} does not exist", run.checkpoint));
    trainer.load_checkpoint(run.checkpoint);
  }
  if (run.on_start) run.on_start(trainer);
  const int64_t steps = trainer.options().steps;
  auto save = [&] {
    trainer.save_checkpoint(run.checkpoint);
    if (run.save_model) run.save_model(trainer);
  };
  StopOnSignal stop;
  Progress progress(run.label, steps, run.progress);
  progress.update(trainer.current_step());
  TrainRunResult result;
  for (int64_t local = 0; trainer.current_step() < steps && !stop.requested(); ++local) {
    const double loss = trainer.step();
    result.loss = local == 0 ? loss : 0.98 * result.loss + 0.02 * loss;
    progress.update(trainer.current_step(),
                    fmt::format("loss {:.4f} lr {:.2e}", result.loss,
                                trainer.learning_rate(trainer.current_step() - 1)));
    if (trainer.current_step() % run.checkpoint_every == 0) save();
  }
  progress.finish(fmt::format("loss {:.4f}", result.loss));
  if (trainer.current_step() % run.checkpoint_every != 0 || stop.requested()) save();
  result.step = trainer.current_step();
  result.stopped = stop.requested();
  return result;
}

torch::Tensor random_rotation(at::Generator& gen) {
  auto a = at::randn({3, 3}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  auto [q, r] = torch::linalg_qr(a);
  q = q * torch::sign(torch::diagonal(r)).unsqueeze(0);
  if (torch::det(q).item<double>() < 0) q.select(1, 0).neg_();
  return q.to(torch::kFloat32);
}

}  // namespace dit
