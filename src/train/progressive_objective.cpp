// Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
// Diffusion Models", Algorithm 2) for rectified flows, with the guided teacher distilled into a
// guidance-free student (Meng et al. 2023, "On Distillation of Guided Diffusion Models").
// Round r trains the student for K_r uniform steps (distill_rounds, each half the last) to
// match two steps of its teacher of size h = 1 / (2 K_r):
//   x' = x_t - h u_T(x_t, t, h),  x'' = x' - h u_T(x', t - h, h)
//   loss |u_S(x_t, t, 2h) - (x_t - x'') / (2h)|^2,   t in {1/K_r, 2/K_r, ..., 1}
// (the paper's target x~ of Algorithm 2, written as the average velocity over the student's
// step: for the rectified-flow path the DDIM step is x_{t-2h} = x_t - 2h u). Round 0's teacher
// is the plain flow model `teacher` with CFG (w = distill_guidance), round r > 0's teacher is a
// frozen copy of the student's EMA weights at the start of the round. The student is
// step-conditioned, so one network keeps every round's step size: with replay_fraction of each
// batch it also matches the frozen teacher at earlier rounds' step sizes (our addition; the
// paper keeps only the last student).
#include <dit/error.h>
#include <dit/flow.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <cmath>
#include <optional>

#include "src/train/few_step.h"

namespace dit {
namespace {

class ProgressiveObjective final : public TrainingObjective {
 public:
  explicit ProgressiveObjective(const TrainOptions& opts) {
    if (opts.teacher.empty())
      throw Error("training objective 'progressive' needs a teacher model (--teacher MODEL)");
    base_ = load_flow_net(opts.teacher);
    for (auto& p : base_->parameters()) p.set_requires_grad(false);
  }

  torch::Tensor loss(FlowMatchingTrainer& trainer, const TrainBatch& batch,
                     at::Generator& gen) override {
    if (batch.periodic.defined())
      throw Error("progressive objective: periodic state numbers (crystals) are not supported; use the "
                  "flow-matching objective");
    auto& net = *trainer.net();
    const auto& x0 = batch.x0;
    const auto& opts = trainer.options();
    const auto& rounds = opts.distill_rounds;
    const int64_t r = std::min<int64_t>(trainer.current_step() / opts.round_steps,
                                        static_cast<int64_t>(rounds.size()) - 1);
    update_snapshot(trainer, r);
    const int64_t B = x0.size(0);
    const int64_t Br = r > 0 ? std::clamp<int64_t>(std::llround(B * opts.replay_fraction), 0, B - 1) : 0;
    const int64_t Bd = B - Br;
    auto f32 = x0.options();
    auto eps = at::randn(x0.sizes(), gen, f32);  // [B, C, H, W]

    // Distillation part: student steps of 2h = 1 / K on the grid t = j / K.
    const double K = static_cast<double>(rounds[r]), h = 0.5 / K;
    auto t_d = (at::randint(1, rounds[r] + 1, {Bd}, gen, torch::kLong).to(torch::kFloat32) / K);
    auto y_d = batch.inputs.narrow(0, Bd);
    auto x_t = flow_interpolate(x0.narrow(0, 0, Bd), eps.narrow(0, 0, Bd), t_d);
    auto h_t = torch::full({Bd}, h, f32);
    torch::Tensor target_d;
    {
      torch::NoGradGuard no_grad;
      auto x1 = x_t - h * teacher(r, x_t, t_d, h_t, y_d, opts.distill_guidance);
      auto x2 = x1 - h * teacher(r, x1, t_d - h, h_t, y_d, opts.distill_guidance);
      target_d = (x_t - x2) / (2 * h);
    }
    FlowInputs inputs = y_d;
    std::vector<torch::Tensor> xs{x_t}, ts{t_d}, ds{torch::full({Bd}, 2 * h, f32)},
        targets{target_d};

    // Replay part: an earlier round's step size 1 / K', target from the frozen teacher, which
    // learned it.
    if (Br > 0) {
      auto q = at::randint(0, r, {Br}, gen, torch::kLong);
      auto k_prev = torch::tensor(std::vector<int64_t>(rounds.begin(), rounds.begin() + r))
                        .index_select(0, q).to(torch::kFloat32);  // K' [Br]
      auto t_r = ((at::rand({Br}, gen, f32) * k_prev).floor() + 1) / k_prev;
      auto d_r = 1.0 / k_prev;
      auto y_r = batch.inputs.narrow(Bd, Br);
      auto x_r = flow_interpolate(x0.narrow(0, Bd, Br), eps.narrow(0, Bd, Br), t_r);
      xs.push_back(x_r), ts.push_back(t_r), ds.push_back(d_r);
      inputs = FlowInputs::cat(inputs, y_r);
      targets.push_back(few_step::guided_flow_map(*snapshot_, x_r, t_r, d_r, y_r,
                                                  torch::ones({Br}, f32)));
    }
    auto out = net.flow(torch::cat(xs), torch::cat(ts), inputs, torch::cat(ds));
    auto target = torch::cat(targets);
    return masked_mse(out, target, inputs.mask);
  }

  TensorMap state() const override {
    if (!snapshot_) return {};
    TensorMap out;
    for (auto& [name, t] : state_dict(*snapshot_)) out["teacher." + name] = t;
    out["round"] = torch::tensor({snapshot_round_});
    return out;
  }
  void load_state(const TensorMap& state, const std::string& source) override {
    pending_.clear();  // copies: the checkpoint's tensors may be views of a closed file
    for (auto& [name, t] : state) pending_[name] = t.clone();
    pending_source_ = source;
  }
  bool needs_step_conditioning() const override { return true; }

 private:
  // Round 0: the base model's guided velocity; later rounds: the frozen student at step h.
  torch::Tensor teacher(int64_t r, const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& h, const FlowInputs& y, double guidance) {
    if (r == 0)
      return few_step::guided_flow_map(*base_, x, t, torch::Tensor(), y,
                                       torch::full({x.size(0)}, guidance, x.options()));
    return few_step::guided_flow_map(*snapshot_, x, t, h, y, torch::ones({x.size(0)}, x.options()));
  }

  // The teacher of round r > 0 is the student's EMA when round r starts (or, on resume, the
  // snapshot stored in the checkpoint).
  void update_snapshot(FlowMatchingTrainer& trainer, int64_t r) {
    if (!pending_.empty()) {
      auto it = pending_.find("round");
      if (it == pending_.end() || it->second.numel() != 1)
        throw Error(fmt::format("{}: tensor 'objective.round' is missing or not a scalar",
                                pending_source_));
      TensorMap weights;
      for (auto& [name, t] : pending_)
        if (name.rfind("teacher.", 0) == 0) weights[name.substr(8)] = t;
      snapshot_ = trainer.net()->fresh();
      load_state_dict(*snapshot_, weights, pending_source_ + " (objective.teacher)");
      snapshot_round_ = it->second.item<int64_t>();
      pending_.clear();
    }
    if (r == 0 || snapshot_round_ == r) return;
    snapshot_ = trainer.net()->fresh();
    load_state_dict(*snapshot_, state_dict(*trainer.ema_net()), "EMA snapshot");
    for (auto& p : snapshot_->parameters()) p.set_requires_grad(false);
    snapshot_->eval();
    snapshot_round_ = r;
  }

  FlowNet base_;
  FlowNet snapshot_;
  int64_t snapshot_round_ = 0;
  TensorMap pending_;
  std::string pending_source_;
};

const bool registered_progressive_objective = register_objective(
    "progressive",
    "progressive distillation (Salimans & Ho 2022) of a guided teacher, halving steps per round",
    [](const TrainOptions& opts) { return std::make_unique<ProgressiveObjective>(opts); });

}  // namespace
}  // namespace dit
