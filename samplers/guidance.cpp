// Classifier-free guidance (Ho & Salimans 2022) as a VelocityFn wrapper.
#include <dit/error.h>
#include <dit/guidance.h>
#include <fmt/format.h>

#include <cmath>

namespace dit {

VelocityFn classifier_free_guidance(ConditionalVelocityFn model, torch::Tensor y,
                                    int64_t null_label, GuidanceOptions opts) {
  if (!model) throw Error("classifier_free_guidance: model is empty, expected a callable");
  if (!y.defined() || y.dim() < 1) {
    throw Error("classifier_free_guidance: y must be a defined tensor [B] of labels");
  }
  if (!std::isfinite(opts.scale)) {
    throw Error(fmt::format("classifier_free_guidance: scale = {}, expected a finite number",
                            opts.scale));
  }
  if (!(opts.t_lo <= opts.t_hi)) {
    throw Error(fmt::format("classifier_free_guidance: t_lo = {}, t_hi = {}, expected "
                            "t_lo <= t_hi",
                            opts.t_lo, opts.t_hi));
  }
  if (!(opts.rescale >= 0.0 && opts.rescale <= 1.0)) {
    throw Error(fmt::format("classifier_free_guidance: rescale = {}, expected a number in [0, 1]",
                            opts.rescale));
  }
  if (opts.guided_channels < -1) {
    throw Error(fmt::format("classifier_free_guidance: guided_channels = {}, expected >= 0 "
                            "(0 = all channels) or -1 (the model's default: all here)",
                            opts.guided_channels));
  }
  // Labels for the unconditional half: y_null [B], the null class everywhere.
  torch::Tensor y_null = torch::full_like(y, null_label);

  return [model = std::move(model), y = std::move(y), y_null = std::move(y_null), opts](
             const torch::Tensor& x, const torch::Tensor& t) -> torch::Tensor {
    const int64_t B = x.size(0);  // x: [B, C, ...], t: [B]
    if (y.size(0) != B) {
      throw Error(fmt::format("classifier_free_guidance: x has batch {} but y has {} labels",
                              B, y.size(0)));
    }
    const torch::Tensor yd = y.to(x.device());  // y: [B]
    // All t in a batch are equal: t[0] decides whether guidance is active at this time.
    const double t0 = (t.dim() == 0 ? t : t.reshape({-1})[0]).item<double>();
    const bool active = opts.scale != 1.0 && t0 >= opts.t_lo && t0 <= opts.t_hi;
    if (!active) return model(x, t, yd);  // conditional only: one batch of B

    // Conditional and unconditional in one batch of 2B.
    const torch::Tensor out = model(torch::cat({x, x}), torch::cat({t, t}),
                                    torch::cat({yd, y_null.to(x.device())}));  // out: [2B, C, ...]
    if (out.dim() < 2 || out.size(0) != 2 * B) {
      throw Error(fmt::format("classifier_free_guidance: model returned shape {}, expected "
                              "[{}, C, ...]",
                              c10::str(out.sizes()), 2 * B));
    }
    const torch::Tensor v_c = out.narrow(0, 0, B);  // v_c: [B, C, ...]
    const torch::Tensor v_u = out.narrow(0, B, B);  // v_u: [B, C, ...]
    const int64_t C = v_c.size(1);
    const int64_t G = opts.guided_channels <= 0 ? C : opts.guided_channels;
    if (G > C) {
      throw Error(fmt::format("classifier_free_guidance: guided_channels = {} but the model "
                              "output has {} channels (dim 1)",
                              G, C));
    }
    const torch::Tensor vc_g = v_c.narrow(1, 0, G);  // vc_g: [B, G, ...]
    const torch::Tensor vu_g = v_u.narrow(1, 0, G);
    // Ho & Salimans 2022, eq. 6 in velocity form: v = v_u + s (v_c - v_u).
    torch::Tensor v_cfg = vu_g + (vc_g - vu_g) * opts.scale;  // v_cfg: [B, G, ...]
    if (opts.rescale > 0.0) {
      // Lin et al. 2024, eq. 15-16: v_resc = v_cfg std(v_c) / std(v_cfg) per sample (std over
      // all non-batch dims of the guided channels), v = phi v_resc + (1 - phi) v_cfg.
      std::vector<int64_t> dims;
      for (int64_t d = 1; d < v_cfg.dim(); ++d) dims.push_back(d);
      const torch::Tensor std_c = vc_g.std(dims, /*unbiased=*/true, /*keepdim=*/true);
      const torch::Tensor std_cfg = v_cfg.std(dims, /*unbiased=*/true, /*keepdim=*/true);
      // A constant v_cfg (std 0) has nothing to rescale: ratio 1.
      const torch::Tensor ratio =
          torch::where(std_cfg > 0, std_c / std_cfg, torch::ones_like(std_cfg));  // [B, 1, ...]
      const torch::Tensor v_resc = v_cfg * ratio;
      v_cfg = v_resc * opts.rescale + v_cfg * (1.0 - opts.rescale);
    }
    if (G == C) return v_cfg;
    // Channels past G (e.g. learned sigma) pass the conditional output through.
    return torch::cat({v_cfg, v_c.narrow(1, G, C - G)}, 1);  // [B, C, ...]
  };
}

}  // namespace dit
