// Shortcut models (Frans, Hafner, Levine & Abbeel 2024, "One Step Diffusion via Shortcut
// Models", Sec. 3), in dit-engine's time direction (t = 1 noise -> t = 0 data). The model
// s(x_t, t, d) is trained on two targets in one batch:
//   flow matching at d = 0:   |s(x_t, t, 0) - (eps - x0)|^2
//   self-consistency at 2d:   |s(x_t, t, 2d) - sg[(s(x_t, t, d) + s(x'_{t-d}, t - d, d)) / 2]|^2,
//                             x'_{t-d} = x_t - d s(x_t, t, d)
// (the paper's shortcut loss; its Sec. 3 writes the step as x_{t+d} = x_t + s d). Step sizes
// 2d = 2^-k down to 2 / shortcut_min_steps; at the finest level the half steps query d = 0 (the
// flow-matching velocity), as the paper does for its smallest step. t for a step 2d is drawn
// on the grid {2d, 4d, ..., 1} that a sampler with 1/(2d) uniform steps visits.
// No teacher: targets come from the model being trained. dit-engine additionally bakes
// classifier-free guidance into the flow map: the d = 0 queries of the finest level use the
// guided velocity v_u + w (v_c - v_u) (w = distill_guidance), so few-step sampling needs one
// network evaluation per step and no CFG.
#include <dit/flow.h>
#include <dit/error.h>
#include <dit/train.h>

#include <cmath>

#include "src/train/few_step.h"

namespace dit {
namespace {

class ShortcutObjective final : public TrainingObjective {
 public:
  torch::Tensor loss(FlowMatchingTrainer& trainer, const TrainBatch& batch,
                     at::Generator& gen) override {
    if (batch.periodic.defined())
      throw Error("shortcut objective: periodic state numbers (crystals) are not supported; use the "
                  "flow-matching objective");
    auto& net = *trainer.net();
    const auto& x0 = batch.x0;
    const auto& opts = trainer.options();
    const int64_t B = x0.size(0);
    const int64_t Bb = std::clamp<int64_t>(std::llround(B * opts.bootstrap_fraction), 1, B - 1);
    const int64_t levels = static_cast<int64_t>(std::log2(opts.shortcut_min_steps));  // 2d = 2^-k, k < levels
    auto f32 = x0.options();
    auto i64 = torch::TensorOptions().dtype(torch::kLong);
    auto eps = at::randn(x0.sizes(), gen, f32);  // [B, C, H, W]

    // Self-consistency part: the first Bb samples.
    auto k = at::randint(0, levels, {Bb}, gen, i64);                       // level per sample
    auto n = torch::pow(2.0, k.to(torch::kFloat64));                       // steps at 2d
    auto j = (at::rand({Bb}, gen, f32).to(torch::kFloat64) * n).floor() + 1;  // 1..n
    auto step2 = (1.0 / n).to(torch::kFloat32);                            // 2d [Bb]
    auto t_b = (j / n).to(torch::kFloat32);                                // [Bb]
    auto half = step2 / 2;                                                 // d
    const double finest = 1.0 / static_cast<double>(opts.shortcut_min_steps);
    auto at_base = half <= finest * (1 + 1e-6);  // half step at the finest level: query d = 0
    auto d_query = torch::where(at_base, torch::zeros_like(half), half);
    auto w = torch::where(at_base, torch::full_like(half, opts.distill_guidance), torch::ones_like(half));
    auto in_b = batch.inputs.narrow(0, Bb);
    auto x_t = flow_interpolate(x0.narrow(0, 0, Bb), eps.narrow(0, 0, Bb), t_b);
    torch::Tensor target_b;
    {
      torch::NoGradGuard no_grad;
      auto u1 = few_step::guided_flow_map(net, x_t, t_b, d_query, in_b, w);
      auto x_mid = x_t - few_step::per_sample(half, x_t) * u1;
      auto u2 = few_step::guided_flow_map(net, x_mid, t_b - half, d_query, in_b, w);
      target_b = (u1 + u2) / 2;
    }

    // Flow-matching part: the other B - Bb samples, with class dropout for CFG.
    const int64_t Bf = B - Bb;
    auto t_f = sample_times(opts, Bf, gen);
    auto in_f = batch.inputs.narrow(Bb, Bf);
    in_f.labels = drop_labels(net.num_classes(), opts, in_f.labels, gen);
    auto x0_f = x0.narrow(0, Bb, Bf), eps_f = eps.narrow(0, Bb, Bf);
    auto xt_f = flow_interpolate(x0_f, eps_f, t_f);

    auto inputs = FlowInputs::cat(in_b, in_f);
    auto out = net.flow(torch::cat({x_t, xt_f}), torch::cat({t_b, t_f}), inputs,
                        torch::cat({step2, torch::zeros_like(t_f)}));
    auto target = torch::cat({target_b, eps_f - x0_f});
    return masked_mse(out, target, inputs.mask);
  }
  bool needs_step_conditioning() const override { return true; }
};

const bool registered_shortcut_objective = register_objective(
    "shortcut", "shortcut model (Frans et al. 2024): flow matching + self-consistency, no teacher",
    [](const TrainOptions&) { return std::make_unique<ShortcutObjective>(); });

}  // namespace
}  // namespace dit
