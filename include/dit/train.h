#pragma once
// Flow-matching training of a DiT (rectified flow, Liu et al. 2023; Lipman et al. 2023) with
// logit-normal time sampling (Esser et al. 2024), class dropout for classifier-free guidance,
// AdamW, warmup, gradient clipping and an EMA of the weights.
#include <dit/model.h>
#include <dit/runtime.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dit {

struct TrainOptions {
  int64_t steps = 20000;
  int64_t batch_size = 128;
  double lr = 3e-4;              // peak learning rate
  std::string lr_schedule = "cosine";  // "constant" or "cosine" (to 10% of lr) after warmup
  int64_t warmup_steps = 500;    // linear warmup from 0
  double weight_decay = 0.0;     // AdamW decoupled weight decay
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double grad_clip = 1.0;        // max global L2 norm; <= 0 disables
  double ema_decay = 0.9995;     // effective decay min(ema_decay, (1 + step) / (10 + step))
  std::string t_sampling = "logit-normal";  // or "uniform"
  double logit_mean = 0.0, logit_std = 1.0;
  double label_dropout = 0.1;    // probability a label is replaced by the null class
  uint64_t seed = 0;

  // What a step minimises (list_objectives()): "flow-matching" (the base model), or a few-step
  // objective for step-conditioned models: "shortcut" (no teacher), "progressive" (distils
  // `teacher`).
  std::string objective = "flow-matching";
  double distill_guidance = 3.0;   // few-step objectives: CFG scale baked into the targets
  int64_t shortcut_min_steps = 64; // shortcut: finest step 1/N; targets at 1/N use v (d = 0)
  double bootstrap_fraction = 0.25;  // shortcut: share of the batch with self-consistency targets
  std::string teacher;             // progressive: the plain flow model distilled in round 0
  std::vector<int64_t> distill_rounds = {8, 4, 2, 1};  // progressive: student steps per round
  int64_t round_steps = 500;       // progressive: optimisation steps per round
  double replay_fraction = 0.25;   // progressive: share of the batch replaying earlier rounds
  void validate() const;         // throws dit::Error naming the field
};

// One training batch: the clean data x0 [B, ...] and its conditions (labels, and for token sets
// features, the padding mask that also masks the loss, context tokens).
struct TrainBatch {
  torch::Tensor x0;
  FlowInputs inputs;
  // Optional [B, N, C] bool (x0's shape): the state numbers that live on the unit circle
  // [-0.5, 0.5) (crystals' fractional coordinates). There the flow-matching objective draws the
  // noise uniformly on the circle, interpolates along the shortest arc (the noise's nearest image
  // to x0) and wraps x_t into [-0.5, 0.5) (DiffCSP / FlowMM). Undefined: all Euclidean.
  torch::Tensor periodic;
};
// The periodic flow-matching path (see TrainBatch::periodic): wrap(v) = v - round(v) into
// [-0.5, 0.5), and the noise a sampler starts from on those numbers (uniform on the circle).
torch::Tensor wrap_periodic(const torch::Tensor& v);

// What the trainer reads: any domain's examples. Each domain brings one (images: TrainingSet;
// docking: ligand poses in pockets; the toy point clouds of the tests).
class TrainingData {
 public:
  virtual ~TrainingData() = default;
  virtual int64_t size() const = 0;
  // Examples `index` [B] (int64) as one batch, padded to its longest example. Augmentation
  // (random rotations, ...) draws from `gen` only: a pure function of (seed, step).
  virtual TrainBatch get(const torch::Tensor& index, at::Generator& gen) const = 0;
  // Throws dit::Error naming what does not fit when the data cannot train `net`.
  virtual void check(const FlowNetImpl& net) const {}
};

// A labelled training set in model space: images [N, C, H, W] float, labels [N] int64.
struct TrainingSet {
  torch::Tensor images, labels;
};

class FlowMatchingTrainer;

// The loss of one training batch. Each objective registers itself in its own file
// (src/train/*_objective.cpp):
//   static const bool registered = dit::register_objective("name", "...", factory);
class TrainingObjective {
 public:
  virtual ~TrainingObjective() = default;
  // batch.x0 [B, ...] model-space data with its inputs; `gen` is the step's noise generator (a
  // pure function of (seed, step)). Returns a scalar loss differentiable in trainer.net().
  virtual torch::Tensor loss(FlowMatchingTrainer& trainer, const TrainBatch& batch,
                             at::Generator& gen) = 0;
  // Frozen tensors to resume from (e.g. a teacher snapshot), saved in checkpoints under
  // "objective.": none by default.
  virtual TensorMap state() const { return {}; }
  virtual void load_state(const TensorMap& state, const std::string& source) {}
  // Whether the model must have a step-size embedder (DiTConfig::step_conditioning).
  virtual bool needs_step_conditioning() const { return false; }
};

using ObjectiveFactory = std::function<std::unique_ptr<TrainingObjective>(const TrainOptions&)>;
bool register_objective(const std::string& name, const std::string& description,
                        ObjectiveFactory factory);
std::unique_ptr<TrainingObjective> make_objective(const TrainOptions& opts);  // by opts.objective
std::vector<std::pair<std::string, std::string>> list_objectives();          // (name, description)

// The flow-matching pieces every objective shares: t ~ the configured distribution [B], and
// labels with class dropout applied (null class with probability label_dropout).
torch::Tensor sample_times(const TrainOptions& opts, int64_t batch, at::Generator& gen);
torch::Tensor drop_labels(int64_t num_classes, const TrainOptions& opts, torch::Tensor y,
                          at::Generator& gen);
// Mean squared error over real tokens: mask [B, N] (undefined: plain mean over everything) masks
// out [B, N, ...] and target, so callers need not zero the target at padded tokens.
torch::Tensor masked_mse(const torch::Tensor& out, const torch::Tensor& target,
                         const torch::Tensor& mask);

class FlowMatchingTrainer {
 public:
  // Any network on any domain's data (the one trainer of every domain).
  FlowMatchingTrainer(FlowNet model, std::shared_ptr<const TrainingData> data, TrainOptions opts);
  // Images: a DiT on labelled images [N, C, H, W] (checked against its config).
  FlowMatchingTrainer(DiT model, TrainingSet data, TrainOptions opts);

  // One optimisation step on the next batch; returns the loss. Throws dit::Error (and leaves
  // the weights untouched) when the loss or gradients are not finite.
  double step();
  int64_t current_step() const { return step_; }
  double learning_rate(int64_t step) const;

  // The batch of step `s`: a pure function of (seed, s), so resumed runs see the same data.
  TrainBatch batch(int64_t s) const;

  // Checkpoint = model.*, ema.*, adamw.m.*, adamw.v.* tensors plus step, seed and options in
  // the metadata. All other randomness is derived from (seed, step), so this is the whole RNG
  // state. Written atomically.
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);

  FlowNet& net() { return model_; }
  FlowNet& ema_net() { return ema_; }
  // The DiT views of net() and ema() (image trainers); throw dit::Error for other networks.
  DiT& model();
  DiT& ema();
  const TrainOptions& options() const { return opts_; }

 private:
  void update_ema();
  FlowNet model_, ema_;
  DiT dit_model_{nullptr}, dit_ema_{nullptr};
  std::unique_ptr<TrainingObjective> objective_;
  std::shared_ptr<const TrainingData> data_;
  TrainOptions opts_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;  // trainable, by name
  std::vector<torch::Tensor> m_, v_;                           // AdamW moments
  int64_t step_ = 0;
};

// The training run every domain's `train` command drives (images, docking, proteins): steps
// until `steps`, a progress bar with the smoothed loss, the checkpoint (and the domain's model
// file, through save_model) every checkpoint_every steps and at the end, and on SIGINT/SIGTERM
// a checkpoint and a clean return, so that `--resume` continues bit-identically.
struct TrainRun {
  std::string label = "train";  // progress bar
  std::string checkpoint;       // the trainer's checkpoint (required)
  int64_t checkpoint_every = 500;
  bool resume = false;          // load `checkpoint` first (dit::Error when it does not exist)
  std::function<void(FlowMatchingTrainer&)> save_model;  // e.g. the EMA weights as a model file
  std::function<void(FlowMatchingTrainer&)> on_start;    // after a resume, before the first step
  bool progress = true;
};
struct TrainRunResult {
  int64_t step = 0;
  double loss = 0;       // smoothed (exponential, 0.98) training loss at the end
  bool stopped = false;  // a signal stopped the run before `steps`
};
TrainRunResult run_training(FlowMatchingTrainer& trainer, const TrainRun& run);

// A uniformly random rotation [3, 3] (float32) drawn from `gen`: the rotation augmentation of
// point-set domains (docking complexes, protein chains).
torch::Tensor random_rotation(at::Generator& gen);

}  // namespace dit
