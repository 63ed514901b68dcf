#pragma once
// Flow-matching samplers. Time convention (everywhere in dit-engine): t = 0 is data, t = 1 is
// noise, x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0, and samplers integrate
// dx/dt = v from t = 1 down to t = 0.
#include <dit/runtime.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dit {

// All a sampler sees of the model: v(x, t) with x [B, ...] and t [B] (in [0, 1]).
using VelocityFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// What few-step samplers see of a step-conditioned model: the average velocity over a step of
// size d ending at t - d, u(x_t, t, d) ~ (x_t - x_{t-d}) / d, with d [B] in [0, t]; u(x, t, 0)
// is the instantaneous velocity v(x, t). (The flow map of Boffi et al. 2025, "Flow map
// matching"; the shortcut s(x_t, t, d) of Frans et al. 2024; MeanFlow's u(z_t, r, t) with
// r = t - d, Geng et al. 2025.)
using FlowMapFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t,
                                              const torch::Tensor& d)>;

// ---- time grids ---------------------------------------------------------------------------
// A time grid maps a step count to times 1 = t_0 > t_1 > ... > t_steps = 0.
class TimeGrid {
 public:
  virtual ~TimeGrid() = default;
  virtual std::vector<double> times(int steps) const = 0;
};

struct TimeGridOptions {
  std::string name = "uniform";  // "uniform", "shifted"
  double shift = 3.0;            // for "shifted": t' = s t / (1 + (s - 1) t)  (SD3, Esser et al.
                                 // 2024, eq. 23); s > 1 spends more steps near the noise end
};
std::unique_ptr<TimeGrid> make_time_grid(const TimeGridOptions& opts);

// ---- discrete-time diffusion (epsilon-prediction models) ----------------------------------
// The DDPM forward process the published DiT checkpoints were trained with (Ho et al. 2020;
// Nichol & Dhariwal 2021): beta_i linear from beta_start to beta_end over train_steps steps
// (scaled by 1000 / train_steps, as improved-diffusion's "linear" schedule), alpha-bar_i the
// product of (1 - beta_j) for j <= i.
struct DiffusionSchedule {
  int train_steps = 1000;
  double beta_start = 1e-4, beta_end = 0.02;
};
// The timesteps a respaced sampler visits (improved-diffusion's space_timesteps with one
// section, Nichol & Dhariwal 2021, sec. 4): `steps` indices round(i (T - 1) / (steps - 1)),
// ascending and distinct. Throws dit::Error unless 1 <= steps <= T.
std::vector<int> respaced_timesteps(int train_steps, int steps);

// ---- samplers -----------------------------------------------------------------------------
struct SampleOptions {
  int steps = 30;              // fixed-step solvers; initial step count hint for dopri5
  TimeGridOptions grid;
  double atol = 1e-5, rtol = 1e-5;  // adaptive solvers
  int max_nfe = 100000;             // adaptive solvers: error when exceeded
  double diffusion = 1.0;           // SDE solvers: g(t)^2 = 2 * diffusion * t
  // SDE solvers: the injected noise's standard deviation times this, the drift unchanged. 1: the
  // SDE whose marginals are the flow's; < 1: low-temperature sampling, which trades diversity
  // for samples nearer the modes (Proteina's noise scaling, Geffner et al. 2025); 0: the drift alone.
  double noise_scale = 1.0;
  // SDE noise, one generator per sample index (dit::sample_generator) so that a sample does
  // not depend on the batch it is in. Empty: the global generator.
  std::vector<torch::Generator> generators;
  // Called after every step (constraints: periodic wrap, centering). May modify x in place.
  std::function<void(torch::Tensor& x, double t)> project;
  // The model's flow map, for samplers with uses_flow_map() (set it for step-conditioned
  // models; those samplers throw dit::Error without it).
  FlowMapFn flow_map;
  // Discrete-time diffusion samplers (uses_epsilon(): "ddpm", "ddim"): the training noise
  // schedule, and DDIM's eta (0: deterministic; 1: DDPM's posterior variance).
  DiffusionSchedule diffusion_schedule;
  double eta = 0.0;
};

struct SampleStats {
  int nfe = 0;            // velocity evaluations
  int steps = 0;          // accepted steps
  int rejected = 0;       // rejected steps (adaptive)
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Integrates from x1 (noise at t = 1) to t = 0 and returns x0.
  virtual torch::Tensor sample(const VelocityFn& v, torch::Tensor x1, const SampleOptions& opts,
                               Progress& progress, SampleStats* stats = nullptr) const = 0;
  // Order of accuracy (fixed-step ODE solvers); 0 when not meaningful.
  virtual int order() const = 0;
  // Velocity evaluations per step of a fixed-step sampler (for progress totals).
  virtual int nfe_per_step() const { return 1; }
  virtual bool adaptive() const { return false; }
  virtual bool stochastic() const { return false; }
  // Few-step samplers step with SampleOptions::flow_map instead of the velocity.
  virtual bool uses_flow_map() const { return false; }
  // Discrete-time diffusion samplers (epsilon-prediction models): the function given to
  // sample() is then not a velocity but the model's raw output at t = timestep / train_steps
  // (timestep the original training index, also after respacing): [B, C, ...] epsilon, or
  // [B, 2C, ...] epsilon and the learned-range variance values in [-1, 1] (learn_sigma).
  virtual bool uses_epsilon() const { return false; }
};

using SamplerFactory = std::function<std::unique_ptr<Sampler>()>;

// Registry by name. Each sampler registers itself in its own file:
//   static const bool registered = dit::register_sampler("euler", "...", [] {...});
bool register_sampler(const std::string& name, const std::string& description,
                      SamplerFactory factory);
std::unique_ptr<Sampler> make_sampler(const std::string& name);  // throws dit::Error if unknown
std::vector<std::pair<std::string, std::string>> list_samplers();  // (name, description)

// Helpers for sampler implementations: t as a [B] tensor matching x, and the stepping loop
// bookkeeping shared by every fixed-step solver.
torch::Tensor time_tensor(const torch::Tensor& x, double t);

}  // namespace dit
