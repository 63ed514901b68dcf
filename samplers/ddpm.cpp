// Discrete-time diffusion samplers for epsilon-prediction models (the published DiT checkpoints):
// DDPM ancestral sampling (Ho et al. 2020, eq. 6-7 and Algorithm 2) with the learned-range
// variance of improved DDPM (Nichol & Dhariwal 2021, eq. 15), and DDIM (Song et al. 2021,
// eq. 12), both on the respaced schedule of improved-diffusion (Nichol & Dhariwal 2021, sec. 4),
// as facebookresearch/DiT's diffusion/ package runs them. The model still receives the
// original training timestep of each respaced step.
//
// Numerics follow that code: the schedule's tables in float64, each coefficient rounded to
// float32 before it multiplies the float32 state (its _extract_into_tensor does .float()), the
// respaced schedule's alpha-bar recomputed as the product of its own betas, and one noise draw
// per step for both samplers (the last step's and DDIM's at eta = 0 are multiplied by zero).
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <cmath>
#include <set>
#include <vector>

#include "samplers/fixed_step.h"

namespace dit {

std::vector<int> respaced_timesteps(int train_steps, int steps) {
  if (train_steps < 1)
    throw Error(fmt::format("diffusion schedule: train_steps = {}, expected >= 1", train_steps));
  if (steps < 1 || steps > train_steps)
    throw Error(fmt::format("diffusion samplers: steps = {}, expected 1 to {} (the training "
                            "schedule's steps)",
                            steps, train_steps));
  // space_timesteps(T, [steps]): a stride of (T - 1) / (steps - 1) accumulated in float64 and
  // rounded half to even (Python's round), so the first step is 0 and the last T - 1.
  const double stride = steps > 1 ? static_cast<double>(train_steps - 1) / (steps - 1) : 1.0;
  std::set<int> taken;
  double index = 0.0;
  for (int i = 0; i < steps; ++i) {
    taken.insert(static_cast<int>(std::nearbyint(index)));
    index += stride;
  }
  return {taken.begin(), taken.end()};
}

namespace {

// The respaced schedule's tables, index i = 0 .. S-1 (i = S-1 is the noisiest step).
struct Tables {
  std::vector<int> timesteps;  // original training timestep of each respaced step
  std::vector<double> beta, alpha_bar, alpha_bar_prev, sqrt_recip_ab, sqrt_recipm1_ab,
      posterior_coef1, posterior_coef2, posterior_log_var_clipped, fixed_large_log_var;
};

Tables make_tables(const DiffusionSchedule& schedule, int steps) {
  const int T = schedule.train_steps;
  Tables s;
  s.timesteps = respaced_timesteps(T, steps);
  if (!(schedule.beta_start > 0 && schedule.beta_start <= schedule.beta_end &&
        schedule.beta_end < 1))
    throw Error(fmt::format("diffusion schedule: betas {} to {}, expected 0 < start <= end < 1",
                            schedule.beta_start, schedule.beta_end));
  // improved-diffusion's "linear": numpy.linspace(scale * start, scale * end, T), scale = 1000 / T.
  const double scale = 1000.0 / T, b0 = scale * schedule.beta_start, b1 = scale * schedule.beta_end;
  const double step = T > 1 ? (b1 - b0) / (T - 1) : 0.0;
  std::set<int> use(s.timesteps.begin(), s.timesteps.end());
  double alpha_bar = 1.0, last = 1.0;
  for (int i = 0; i < T; ++i) {
    const double beta = i == T - 1 && T > 1 ? b1 : b0 + i * step;
    alpha_bar *= 1.0 - beta;
    if (use.count(i)) {  // SpacedDiffusion: the beta that takes alpha-bar from `last` to here
      s.beta.push_back(1.0 - alpha_bar / last);
      last = alpha_bar;
    }
  }
  const size_t S = s.beta.size();
  double ab = 1.0;
  for (size_t i = 0; i < S; ++i) {
    s.alpha_bar_prev.push_back(ab);
    ab *= 1.0 - s.beta[i];  // recomputed from the respaced betas, as GaussianDiffusion does
    s.alpha_bar.push_back(ab);
  }
  std::vector<double> posterior_var(S);
  for (size_t i = 0; i < S; ++i) {
    const double a = s.alpha_bar[i], ap = s.alpha_bar_prev[i], b = s.beta[i];
    s.sqrt_recip_ab.push_back(std::sqrt(1.0 / a));
    s.sqrt_recipm1_ab.push_back(std::sqrt(1.0 / a - 1.0));
    posterior_var[i] = b * (1.0 - ap) / (1.0 - a);  // beta-tilde (Ho et al. eq. 7)
    s.posterior_coef1.push_back(b * std::sqrt(ap) / (1.0 - a));
    s.posterior_coef2.push_back((1.0 - ap) * std::sqrt(1.0 - b) / (1.0 - a));
  }
  // log beta-tilde with its first entry (0 at step 0) replaced by the second; the fixed-large
  // variance uses beta instead (first entry again beta-tilde_1).
  for (size_t i = 0; i < S; ++i) {
    const double clipped = i == 0 && S > 1 ? posterior_var[1] : posterior_var[i];
    s.posterior_log_var_clipped.push_back(std::log(clipped));
    s.fixed_large_log_var.push_back(std::log(i == 0 && S > 1 ? posterior_var[1] : s.beta[i]));
  }
  return s;
}

// A coefficient as the reference applies it: a float32 scalar.
double f32(double value) { return static_cast<double>(static_cast<float>(value)); }

class DiffusionSampler final : public Sampler {
 public:
  explicit DiffusionSampler(bool ddim) : ddim_(ddim) {}

  torch::Tensor sample(const VelocityFn& model, torch::Tensor x1, const SampleOptions& opts,
                       Progress& progress, SampleStats* stats) const override {
    const char* name = ddim_ ? "ddim" : "ddpm";
    samplers_detail::check_x1(name, x1);
    samplers_detail::check_generators(name, x1, opts.generators);
    if (!ddim_ && opts.steps < 2)
      throw Error("sampler \"ddpm\": steps must be >= 2 (the clipped posterior variance of step "
                  "0 is that of step 1)");
    if (!(opts.eta >= 0.0) || !std::isfinite(opts.eta))
      throw Error(fmt::format("sampler \"ddim\": eta = {}, expected a finite number >= 0", opts.eta));
    const Tables s = make_tables(opts.diffusion_schedule, opts.steps);
    const int S = static_cast<int>(s.beta.size());
    const int64_t C = x1.size(1);
    torch::Tensor x = std::move(x1);  // x: [B, C, ...]
    for (int i = S - 1; i >= 0; --i) {
      const double t = static_cast<double>(s.timesteps[i]) / opts.diffusion_schedule.train_steps;
      const torch::Tensor out = model(x, time_tensor(x, t));  // out: [B, C or 2C, ...]
      if (out.dim() != x.dim() || (out.size(1) != C && out.size(1) != 2 * C))
        throw Error(fmt::format("sampler \"{}\": the model returned {} channels for a {}-channel "
                                "state: expected {} (epsilon) or {} (epsilon and learned variance)",
                                name, out.size(1), C, C, 2 * C));
      const torch::Tensor eps_model = out.narrow(1, 0, C);  // [B, C, ...]
      // x0 from epsilon (Ho et al. eq. 15 solved for x0); no clipping (latents are unbounded).
      const torch::Tensor x0 = x * f32(s.sqrt_recip_ab[i]) - eps_model * f32(s.sqrt_recipm1_ab[i]);
      const torch::Tensor noise = samplers_detail::draw_noise(x, opts.generators);  // [B, C, ...]
      const double nonzero = i > 0 ? 1.0 : 0.0;  // no noise on the last step
      if (ddim_) {
        // epsilon re-derived from x0, as the reference's _predict_eps_from_xstart.
        const torch::Tensor eps = (x * f32(s.sqrt_recip_ab[i]) - x0) / f32(s.sqrt_recipm1_ab[i]);
        const double ab = f32(s.alpha_bar[i]), abp = f32(s.alpha_bar_prev[i]);
        // Song et al. eq. 16 (eta = 1: DDPM's posterior standard deviation).
        const double sigma = f32(opts.eta * std::sqrt((1 - abp) / (1 - ab)) * std::sqrt(1 - ab / abp));
        const torch::Tensor mean =
            x0 * f32(std::sqrt(abp)) + eps * f32(std::sqrt(1 - abp - sigma * sigma));
        x = mean + noise * (nonzero * sigma);
      } else {
        const torch::Tensor mean = x0 * f32(s.posterior_coef1[i]) + x * f32(s.posterior_coef2[i]);
        torch::Tensor log_var;  // [B, C, ...] or a scalar
        if (out.size(1) == 2 * C) {
          // Learned range (Nichol & Dhariwal eq. 15): v in [-1, 1] interpolates, in log space,
          // between beta-tilde (clipped) and beta.
          const torch::Tensor frac = (out.narrow(1, C, C) + 1) / 2;
          log_var = frac * f32(std::log(s.beta[i])) + (1 - frac) * f32(s.posterior_log_var_clipped[i]);
        } else {
          log_var = torch::full({}, f32(s.fixed_large_log_var[i]), x.options());
        }
        x = mean + noise * torch::exp(0.5 * log_var) * nonzero;
      }
      if (opts.project) opts.project(x, static_cast<double>(i > 0 ? s.timesteps[i - 1] : 0) /
                                            opts.diffusion_schedule.train_steps);
      progress.update(S - i, "");
    }
    if (stats) {
      stats->nfe = S;
      stats->steps = S;
      stats->rejected = 0;
    }
    return x;
  }
  int order() const override { return 0; }
  bool stochastic() const override { return !ddim_; }
  bool uses_epsilon() const override { return true; }

 private:
  bool ddim_;
};

const bool registered_ddpm = register_sampler(
    "ddpm",
    "DDPM ancestral sampling, respaced, learned-range variance (epsilon models: published DiT)",
    [] { return std::make_unique<DiffusionSampler>(false); });
const bool registered_ddim = register_sampler(
    "ddim", "DDIM (eta from --eta, default 0), respaced (epsilon models: published DiT)",
    [] { return std::make_unique<DiffusionSampler>(true); });

}  // namespace
}  // namespace dit
