// dit image train: flow-matching training of a class-conditional DiT on an IDX image set.
#include <dit/error.h>
#include <dit/image.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <dit/fs.h>

#include "commands.h"

namespace dit::cli {

namespace {

struct ImageTrainArgs {
  std::string config = "fmnist", dataset = "fashion-mnist", data_root, out = "runs/fmnist";
  std::string storage = "f16", init;
  int64_t checkpoint_every = 500;
  int threads = 0;
  int64_t hidden = 0, depth = 0, heads = 0;
  bool resume = false;
  int64_t limit = 0;
  TrainOptions opts;
};

void run_image_train(const ImageTrainArgs& a) {
  int threads = set_threads(a.threads);
  auto config = DiTConfig::preset(a.config);
  if (a.hidden > 0) config.hidden_size = a.hidden;
  if (a.depth > 0) config.depth = a.depth;
  if (a.heads > 0) config.num_heads = a.heads;
  auto ds = load_image_dataset(a.dataset, "train", a.data_root);
  TrainingSet data{images_to_model_space(ds.images), ds.labels};
  if (a.limit > 0 && a.limit < data.images.size(0))
    data = {data.images.narrow(0, 0, a.limit), data.labels.narrow(0, 0, a.limit)};
  if (data.images.size(2) != config.input_size)
    throw Error(fmt::format("--config {}: input size {} does not match the {}x{} images of {} in {}",
                            a.config, config.input_size, data.images.size(2), data.images.size(3),
                            a.dataset, a.data_root.empty() ? default_dataset_root(a.dataset) : a.data_root));
  config.num_classes = static_cast<int64_t>(ds.class_names.size());
  TrainOptions opts = a.opts;
  // Few-step objectives train a step-conditioned copy of a trained model (--init), which is
  // also the progressive teacher unless --teacher names another.
  if (opts.objective == "progressive" && opts.teacher.empty()) opts.teacher = a.init;
  config.step_conditioning = make_objective(opts)->needs_step_conditioning();
  if (config.step_conditioning && a.init.empty())
    throw Error(fmt::format("--objective {}: start from a trained model with --init MODEL",
                            opts.objective));
  torch::manual_seed(opts.seed);  // weight initialisation
  DiT model(config);
  if (!a.init.empty()) {  // fine-tune: start from a model file's weights, fresh optimizer
    DiT init = load_dit(a.init);
    if (config.step_conditioning && !init->config().step_conditioning)
      init = with_step_conditioning(init);
    if (init->config().describe() != config.describe())
      throw Error(fmt::format("--init {}: model ({}) differs from --config ({})", a.init,
                              init->config().describe(), config.describe()));
    load_state_dict(*model, state_dict(*init), a.init);
  }
  FlowMatchingTrainer trainer(model, data, opts);

  dit::fs::create_directories(a.out);
  const std::string model_path = a.out + "/model.safetensors";
  TrainRun run;
  run.checkpoint = a.out + "/checkpoint.safetensors";
  run.checkpoint_every = a.checkpoint_every;
  run.resume = a.resume;
  auto storage = a.storage == "f32" ? torch::kFloat32 : a.storage == "bf16" ? torch::kBFloat16 : torch::kFloat16;
  run.save_model = [&](FlowMatchingTrainer& t) {
    save_dit(model_path, t.ema(), storage,
             {{"train.step", std::to_string(t.current_step())},
              {"train.dataset", a.dataset},
              {"train.objective", opts.objective}});
  };
  run.on_start = [&](FlowMatchingTrainer& t) {
    fmt::print(stderr, "{}\n{} images of {}, {} threads, batch {}, steps {} (from {})\n", config.describe(),
               data.images.size(0), a.dataset, threads, a.opts.batch_size, a.opts.steps, t.current_step());
  };
  const auto result = run_training(trainer, run);
  fmt::print(stderr, "{} at step {}: {} (EMA weights, {}), {}\n", result.stopped ? "stopped" : "finished",
             result.step, model_path, a.storage, run.checkpoint);
}
}  // namespace

void add_image_train(CLI::App& image) {
  auto a = std::make_shared<ImageTrainArgs>();
  auto* cmd = image.add_subcommand("train", "Train a class-conditional DiT by flow matching");
  cmd->add_option("--config", a->config, "Model config (fmnist, tiny, DiT-S/2, ...)")->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "Override the config's hidden size");
  cmd->add_option("--depth", a->depth, "Override the config's number of blocks");
  cmd->add_option("--heads", a->heads, "Override the config's attention heads");
  cmd->add_option("--dataset", a->dataset, "fashion-mnist or mnist")->capture_default_str()
      ->check(CLI::IsMember({"fashion-mnist", "mnist"}));
  cmd->add_option("--data-root", a->data_root, "Directory of the IDX files (default: the package's)");
  cmd->add_option("-o,--out", a->out, "Output directory (checkpoint.safetensors, model.safetensors)")->capture_default_str();
  cmd->add_option("--steps", a->opts.steps, "Total optimisation steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-b,--batch", a->opts.batch_size, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--lr", a->opts.lr, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--lr-schedule", a->opts.lr_schedule, "constant or cosine")->capture_default_str()
      ->check(CLI::IsMember({"constant", "cosine"}));
  cmd->add_option("--warmup", a->opts.warmup_steps, "Warmup steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--weight-decay", a->opts.weight_decay, "AdamW weight decay")->capture_default_str();
  cmd->add_option("--grad-clip", a->opts.grad_clip, "Max gradient norm (0: off)")->capture_default_str();
  cmd->add_option("--ema", a->opts.ema_decay, "EMA decay")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--t-sampling", a->opts.t_sampling, "logit-normal or uniform")->capture_default_str()
      ->check(CLI::IsMember({"logit-normal", "uniform"}));
  cmd->add_option("--label-dropout", a->opts.label_dropout, "Class dropout for CFG")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", a->opts.seed, "Seed (weights, data order, noise)")->capture_default_str();
  cmd->add_option("--checkpoint-every", a->checkpoint_every, "Steps between checkpoints")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--storage", a->storage, "dtype of the exported EMA model")->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--limit", a->limit, "Use only the first N training images (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  auto* resume = cmd->add_flag("--resume", a->resume, "Continue from OUT/checkpoint.safetensors");
  cmd->add_option("--objective", a->opts.objective,
                  "flow-matching (base model), shortcut (few-step, no teacher) or progressive "
                  "(few-step, distils --teacher)")
      ->capture_default_str();
  cmd->add_option("--teacher", a->opts.teacher, "progressive: the model to distil (default: --init)");
  cmd->add_option("--distill-guidance", a->opts.distill_guidance,
                  "few-step objectives: CFG scale baked into the student")->capture_default_str();
  cmd->add_option("--shortcut-min-steps", a->opts.shortcut_min_steps,
                  "shortcut: finest step 1/N (targets at 1/N use the guided velocity)")->capture_default_str();
  cmd->add_option("--bootstrap-fraction", a->opts.bootstrap_fraction,
                  "shortcut: share of each batch with self-consistency targets")->capture_default_str();
  cmd->add_option("--distill-rounds", a->opts.distill_rounds,
                  "progressive: student steps per round, each half the last")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--round-steps", a->opts.round_steps, "progressive: optimisation steps per round")
      ->capture_default_str();
  cmd->add_option("--replay-fraction", a->opts.replay_fraction,
                  "progressive: share of each batch replaying earlier rounds' step sizes")->capture_default_str();
  cmd->add_option("--init", a->init, "Start from this model file's weights (fine-tuning; fresh optimizer)")
      ->check(CLI::ExistingFile)->excludes(resume);
  cmd->callback([a] { run_image_train(*a); });
}

}  // namespace dit::cli
