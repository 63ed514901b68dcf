#include <dit/error.h>
#include <dit/flow.h>
#include <dit/safetensors.h>
#include <dit/train.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace dit {

namespace {
constexpr double kPi = 3.14159265358979323846;
// Stream ids mixed into the seed so data order and noise never share a generator.
constexpr uint64_t kDataStream = 0x64617461ULL, kNoiseStream = 0x6e6f6973ULL;
// Augmentation (random rotations of token sets) has a stream of its own too.
constexpr uint64_t kAugmentStream = 0x61756736ULL;

// Labelled images [N, C, H, W] (TrainingSet) as training data for a DiT.
class ImageTrainingData final : public TrainingData {
 public:
  ImageTrainingData(TrainingSet set, const DiTConfig& c) : set_(std::move(set)) {
    if (set_.images.dim() != 4 || set_.images.size(1) != c.in_channels ||
        set_.images.size(2) != c.input_size || set_.images.size(3) != c.input_size)
      throw Error(fmt::format("training data: images must be [N, {}, {}, {}] for this model",
                              c.in_channels, c.input_size, c.input_size));
    if (set_.labels.dim() != 1 || set_.labels.size(0) != set_.images.size(0))
      throw Error("training data: labels must be [N] matching the images");
    if (c.num_classes > 0 && (set_.labels.min().item<int64_t>() < 0 ||
                              set_.labels.max().item<int64_t>() >= c.num_classes))
      throw Error(fmt::format("training data: labels must be in [0, {})", c.num_classes));
  }
  int64_t size() const override { return set_.images.size(0); }
  TrainBatch get(const torch::Tensor& index, at::Generator&) const override {
    TrainBatch b;
    b.x0 = set_.images.index_select(0, index);
    b.inputs.labels = set_.labels.index_select(0, index);
    return b;
  }

 private:
  TrainingSet set_;
};

nlohmann::json options_json(const TrainOptions& o) {
  return {{"steps", o.steps},           {"batch_size", o.batch_size},
          {"lr", o.lr},                 {"lr_schedule", o.lr_schedule},
          {"warmup_steps", o.warmup_steps}, {"weight_decay", o.weight_decay},
          {"beta1", o.beta1},           {"beta2", o.beta2},
          {"adam_eps", o.adam_eps},     {"grad_clip", o.grad_clip},
          {"ema_decay", o.ema_decay},   {"t_sampling", o.t_sampling},
          {"logit_mean", o.logit_mean}, {"logit_std", o.logit_std},
          {"label_dropout", o.label_dropout}, {"seed", o.seed},
          {"objective", o.objective},   {"distill_guidance", o.distill_guidance},
          {"shortcut_min_steps", o.shortcut_min_steps},
          {"bootstrap_fraction", o.bootstrap_fraction}, {"teacher", o.teacher},
          {"distill_rounds", o.distill_rounds}, {"round_steps", o.round_steps},
          {"replay_fraction", o.replay_fraction}};
}
}  // namespace

void TrainOptions::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("training options: " + what);
  };
  require(steps > 0, fmt::format("steps must be positive, got {}", steps));
  require(batch_size > 0, fmt::format("batch_size must be positive, got {}", batch_size));
  require(lr > 0 && std::isfinite(lr), fmt::format("lr must be positive, got {}", lr));
  require(lr_schedule == "constant" || lr_schedule == "cosine",
          fmt::format("lr_schedule must be 'constant' or 'cosine', got '{}'", lr_schedule));
  require(warmup_steps >= 0, "warmup_steps must be >= 0");
  require(weight_decay >= 0 && std::isfinite(weight_decay),
          fmt::format("weight_decay must be a finite number >= 0, got {}", weight_decay));
  require(std::isfinite(grad_clip),
          fmt::format("grad_clip must be a finite number (<= 0: off), got {}", grad_clip));
  require(std::isfinite(logit_mean), fmt::format("logit_mean must be finite, got {}", logit_mean));
  require(ema_decay >= 0 && ema_decay < 1, fmt::format("ema_decay must be in [0, 1), got {}", ema_decay));
  require(t_sampling == "logit-normal" || t_sampling == "uniform",
          fmt::format("t_sampling must be 'logit-normal' or 'uniform', got '{}'", t_sampling));
  require(logit_std > 0 && std::isfinite(logit_std), "logit_std must be a finite positive number");
  require(label_dropout >= 0 && label_dropout <= 1,
          fmt::format("label_dropout must be in [0, 1], got {}", label_dropout));
  require(std::isfinite(distill_guidance) && distill_guidance >= 0,
          fmt::format("distill_guidance must be a finite number >= 0, got {}", distill_guidance));
  require(shortcut_min_steps >= 2 && (shortcut_min_steps & (shortcut_min_steps - 1)) == 0 &&
              shortcut_min_steps <= 4096,
          fmt::format("shortcut_min_steps must be a power of two in [2, 4096], got {}",
                      shortcut_min_steps));
  require(bootstrap_fraction > 0 && bootstrap_fraction < 1,
          fmt::format("bootstrap_fraction must be in (0, 1), got {}", bootstrap_fraction));
  require(!distill_rounds.empty(), "distill_rounds must list at least one step count");
  for (size_t i = 0; i < distill_rounds.size(); ++i) {
    const int64_t k = distill_rounds[i];
    require(k >= 1 && k <= 4096, fmt::format("distill_rounds[{}] = {} must be in [1, 4096]", i, k));
    require(i == 0 || distill_rounds[i - 1] == 2 * k,
            fmt::format("distill_rounds must halve each round, got {} after {}", k,
                        i ? distill_rounds[i - 1] : 0));
  }
  require(round_steps > 0, fmt::format("round_steps must be positive, got {}", round_steps));
  require(replay_fraction >= 0 && replay_fraction < 1,
          fmt::format("replay_fraction must be in [0, 1), got {}", replay_fraction));
}

torch::Tensor wrap_periodic(const torch::Tensor& v) { return v - torch::round(v); }

torch::Tensor sample_times(const TrainOptions& opts, int64_t batch, at::Generator& gen) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // t ~ logit-normal: t = sigmoid(m + s n) (Esser et al. 2024, eq. 19), or uniform.
  return opts.t_sampling == "uniform"
             ? at::rand({batch}, gen, f32)
             : torch::sigmoid(opts.logit_mean + opts.logit_std * at::randn({batch}, gen, f32));
}

torch::Tensor drop_labels(int64_t num_classes, const TrainOptions& opts, torch::Tensor y,
                          at::Generator& gen) {
  // Class dropout: the null class trains the unconditional model used by CFG.
  if (num_classes == 0 || !y.defined()) return y;
  auto drop = at::rand({y.size(0)}, gen, torch::TensorOptions().dtype(torch::kFloat32)) <
              opts.label_dropout;
  return torch::where(drop, torch::full_like(y, num_classes), y);
}

torch::Tensor masked_mse(const torch::Tensor& out, const torch::Tensor& target,
                         const torch::Tensor& mask) {
  if (!mask.defined()) return torch::mse_loss(out, target);
  std::vector<int64_t> shape(out.dim(), 1);
  shape[0] = mask.size(0), shape[1] = mask.size(1);
  auto m = mask.to(out.dtype()).view(shape);  // [B, N, 1, ...]
  const double per_token = static_cast<double>(out[0][0].numel());
  return ((out - target).pow(2) * m).sum() / (m.sum().clamp_min(1) * per_token);
}

FlowMatchingTrainer::FlowMatchingTrainer(DiT model, TrainingSet data, TrainOptions opts)
    : FlowMatchingTrainer(model.ptr(),
                          std::make_shared<ImageTrainingData>(std::move(data), model->config()),
                          std::move(opts)) {}

FlowMatchingTrainer::FlowMatchingTrainer(FlowNet model, std::shared_ptr<const TrainingData> data,
                                         TrainOptions opts)
    : model_(std::move(model)), data_(std::move(data)), opts_(std::move(opts)) {
  opts_.validate();
  if (!model_ || !data_) throw Error("training: no model or no data");
  if (data_->size() < 1) throw Error("training data: no examples");
  data_->check(*model_);
  ema_ = model_->fresh();
  if (auto dit = std::dynamic_pointer_cast<DiTImpl>(model_)) {
    dit_model_ = DiT(dit);
    dit_ema_ = DiT(std::static_pointer_cast<DiTImpl>(ema_));
  }
  objective_ = make_objective(opts_);
  if (objective_->needs_step_conditioning() && !model_->step_conditioned())
    throw Error(fmt::format("training objective '{}' needs a step-conditioned model (start from "
                            "a trained model with --init: the step embedder is added)",
                            opts_.objective));
  model_->train();
  ema_->eval();
  load_state_dict(*ema_, state_dict(*model_), "initial weights");
  for (auto& p : ema_->parameters()) p.set_requires_grad(false);
  for (const auto& p : model_->named_parameters()) {
    params_.emplace_back(p.key(), p.value());
    m_.push_back(torch::zeros_like(p.value()));
    v_.push_back(torch::zeros_like(p.value()));
  }
}

DiT& FlowMatchingTrainer::model() {
  if (!dit_model_) throw Error("training: the network is not an image DiT (use net())");
  return dit_model_;
}

DiT& FlowMatchingTrainer::ema() {
  if (!dit_ema_) throw Error("training: the network is not an image DiT (use ema_net())");
  return dit_ema_;
}

double FlowMatchingTrainer::learning_rate(int64_t s) const {
  if (s < opts_.warmup_steps) return opts_.lr * static_cast<double>(s + 1) / opts_.warmup_steps;
  if (opts_.lr_schedule == "constant") return opts_.lr;
  double progress = static_cast<double>(s - opts_.warmup_steps) /
                    std::max<int64_t>(1, opts_.steps - opts_.warmup_steps);
  progress = std::min(1.0, progress);
  return opts_.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(kPi * progress)));
}

TrainBatch FlowMatchingTrainer::batch(int64_t s) const {
  // Samples are read epoch by epoch, each epoch a permutation seeded by (seed, epoch).
  const int64_t n = data_->size(), b = opts_.batch_size;
  std::vector<torch::Tensor> idx;
  int64_t pos = s * b, remaining = b;
  while (remaining > 0) {
    int64_t epoch = pos / n, offset = pos % n, take = std::min(remaining, n - offset);
    auto gen = sample_generator(opts_.seed ^ kDataStream, static_cast<uint64_t>(epoch));
    auto perm = at::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));
    idx.push_back(perm.narrow(0, offset, take));
    pos += take, remaining -= take;
  }
  auto augment = sample_generator(opts_.seed ^ kAugmentStream, static_cast<uint64_t>(s));
  return data_->get(torch::cat(idx), augment);
}

double FlowMatchingTrainer::step() {
  auto batch = this->batch(step_);  // x0: [B, ...], inputs
  auto gen = sample_generator(opts_.seed ^ kNoiseStream, static_cast<uint64_t>(step_));
  auto loss = objective_->loss(*this, batch, gen);
  for (auto& [name, p] : params_) p.mutable_grad() = torch::Tensor();
  loss.backward();

  double loss_value = loss.item<double>();
  torch::NoGradGuard no_grad;
  auto grad_norm_sq = torch::zeros({}, torch::kFloat64);
  for (auto& [name, p] : params_)
    if (p.grad().defined()) grad_norm_sq += p.grad().to(torch::kFloat64).pow(2).sum();
  double grad_norm = std::sqrt(grad_norm_sq.item<double>());
  if (!std::isfinite(loss_value) || !std::isfinite(grad_norm))
    throw Error(fmt::format("training step {}: non-finite loss ({}) or gradient norm ({}); "
                            "weights left at the previous step",
                            step_, loss_value, grad_norm));
  double clip = opts_.grad_clip > 0 && grad_norm > opts_.grad_clip ? opts_.grad_clip / grad_norm : 1.0;

  // AdamW (Loshchilov & Hutter 2019, Algorithm 2) with decoupled weight decay.
  const double lr = learning_rate(step_);
  const double t_adam = static_cast<double>(step_ + 1);
  const double bc1 = 1 - std::pow(opts_.beta1, t_adam), bc2 = 1 - std::pow(opts_.beta2, t_adam);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    auto g = p.grad() * clip;
    m_[i].mul_(opts_.beta1).add_(g, 1 - opts_.beta1);
    v_[i].mul_(opts_.beta2).addcmul_(g, g, 1 - opts_.beta2);
    if (opts_.weight_decay > 0) p.mul_(1 - lr * opts_.weight_decay);
    auto denom = (v_[i] / bc2).sqrt_().add_(opts_.adam_eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
  ++step_;
  update_ema();
  return loss_value;
}

void FlowMatchingTrainer::update_ema() {
  torch::NoGradGuard no_grad;
  double s = static_cast<double>(step_);
  double decay = std::min(opts_.ema_decay, (1 + s) / (10 + s));
  auto src = model_->parameters();
  auto dst = ema_->parameters();
  for (size_t i = 0; i < src.size(); ++i) dst[i].mul_(decay).add_(src[i], 1 - decay);
}

void FlowMatchingTrainer::save_checkpoint(const std::string& path) const {
  TensorMap tensors;
  for (auto& [name, t] : state_dict(*model_)) tensors["model." + name] = t.detach();
  for (auto& [name, t] : state_dict(*ema_)) tensors["ema." + name] = t.detach();
  for (size_t i = 0; i < params_.size(); ++i) {
    tensors["adamw.m." + params_[i].first] = m_[i];
    tensors["adamw.v." + params_[i].first] = v_[i];
  }
  for (auto& [name, t] : objective_->state()) tensors["objective." + name] = t.detach();
  Metadata meta = model_->metadata();
  meta["format"] = "dit-engine training checkpoint";
  meta["train.model"] = model_->describe();
  meta["train.step"] = std::to_string(step_);
  meta["train.options"] = options_json(opts_).dump();
  save_safetensors(path, tensors, meta);
}

void FlowMatchingTrainer::load_checkpoint(const std::string& path) {
  SafeTensorsFile file(path);
  auto meta = file.metadata();
  auto it = meta.find("train.step");
  if (it == meta.end())
    throw Error(fmt::format("{}: metadata 'train.step' missing: not a training checkpoint", path));
  int64_t step = -1;
  try {
    step = std::stoll(it->second);
  } catch (const std::exception&) {
  }
  if (step < 0)
    throw Error(fmt::format("{}: metadata train.step='{}' is not a step count", path, it->second));
  // The architecture: as recorded (train.model), or for older image checkpoints from shapes.
  auto recorded = meta.find("train.model");
  const std::string saved = recorded != meta.end() ? recorded->second
                            : dit_model_           ? infer_config(file, "model.").describe()
                                                   : std::string("(not recorded)");
  if (saved != model_->describe())
    throw Error(fmt::format("{}: checkpoint model ({}) differs from the configured model ({})",
                            path, saved, model_->describe()));
  auto saved_opts = nlohmann::json::parse(meta["train.options"], nullptr, false);
  if (saved_opts.is_object() && saved_opts.contains("seed") &&
      !(saved_opts["seed"].is_number_unsigned() && saved_opts["seed"].get<uint64_t>() == opts_.seed))
    throw Error(fmt::format("{}: checkpoint seed {} differs from --seed {}", path,
                            saved_opts["seed"].dump(), opts_.seed));
  if (saved_opts.is_object() && saved_opts.value("objective", "flow-matching") != opts_.objective)
    throw Error(fmt::format("{}: checkpoint objective '{}' differs from --objective '{}'", path,
                            saved_opts.value("objective", "flow-matching"), opts_.objective));
  TensorMap model_w, ema_w, objective_w;
  for (const auto& name : file.names()) {
    if (name.rfind("model.", 0) == 0) model_w[name.substr(6)] = file.view(name);
    if (name.rfind("ema.", 0) == 0) ema_w[name.substr(4)] = file.view(name);
    if (name.rfind("objective.", 0) == 0) objective_w[name.substr(10)] = file.view(name);
  }
  load_state_dict(*model_, model_w, path);
  load_state_dict(*ema_, ema_w, path);
  objective_->load_state(objective_w, path);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [prefix, store] : {std::pair{"adamw.m.", &m_}, std::pair{"adamw.v.", &v_}}) {
      std::string key = prefix + params_[i].first;
      if (!file.contains(key)) throw Error(fmt::format("{}: tensor '{}' is missing", path, key));
      auto value = file.view(key);
      if (value.sizes() != (*store)[i].sizes())
        throw Error(fmt::format("{}: tensor '{}' has the wrong shape", path, key));
      if (!value.is_floating_point() || !torch::isfinite(value).all().item<bool>())
        throw Error(fmt::format("{}: tensor '{}' is not finite floating point", path, key));
      (*store)[i].copy_(value);
    }
  }
  step_ = step;
}

}  // namespace dit
