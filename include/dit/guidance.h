#pragma once
// Classifier-free guidance (Ho & Salimans 2022) as a wrapper on the velocity function.
#include <dit/sampler.h>

namespace dit {

// A conditional model: v(x, t, y), with y [B] class ids (or any per-sample condition index).
using ConditionalVelocityFn =
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& y)>;

struct GuidanceOptions {
  double scale = 1.0;  // v = v_u + scale (v_c - v_u); 1 = conditional model only
  // Guidance applies only for t in [t_lo, t_hi] (Kynkaanniemi et al. 2024, "Applying guidance
  // in a limited interval"); outside it the conditional velocity alone is used (one NFE).
  double t_lo = 0.0, t_hi = 1.0;
  // Rescale toward the conditional velocity's per-sample std (Lin et al. 2024, "Common
  // diffusion noise schedules and sample steps are flawed", eq. 15-16): phi in [0, 1].
  double rescale = 0.0;
  // How many leading channels (dim 1) are guided; the rest pass the conditional output
  // through (learn_sigma models). 0: all. -1: the model's kind decides (dit::sample_flow: 3 for
  // the published DiT and SiT checkpoints, as their forward_with_cfg does; all for our own
  // models); classifier_free_guidance alone, which sees no model, guides all channels.
  int64_t guided_channels = -1;
};

// Builds v(x, t) for fixed labels y [B] and the null label: cond and uncond run in one batch
// of 2B when guidance is active at t.
VelocityFn classifier_free_guidance(ConditionalVelocityFn model, torch::Tensor y,
                                    int64_t null_label, GuidanceOptions opts);

}  // namespace dit
