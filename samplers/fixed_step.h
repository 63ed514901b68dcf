#pragma once
// Internal helpers shared by the sampler implementations in samplers/ (not public API): input
// checks and the stepping loop of every fixed-step solver (time grid, project, progress, stats).
#include <dit/sampler.h>

#include <functional>

namespace dit::samplers_detail {

// Throws dit::Error unless x1 is a defined floating-point tensor [B, ...].
void check_x1(const char* sampler, const torch::Tensor& x1);

// One step of an explicit one-step method from t to t_next (t_next < t): returns x at t_next
// and adds its velocity evaluations to `nfe`. `index` is the step number (0-based).
using StepFn = std::function<torch::Tensor(const VelocityFn& v, const torch::Tensor& x,
                                           double t, double t_next, int index, int& nfe)>;

// Walks the grid make_time_grid(opts.grid)->times(opts.steps) from t = 1 to t = 0 calling
// `step` for each interval, then opts.project(x, t_next) if set and progress.update(i + 1).
// Fills *stats (nfe, steps, rejected = 0) when non-null.
torch::Tensor integrate_fixed(const char* sampler, const VelocityFn& v, torch::Tensor x1,
                              const SampleOptions& opts, Progress& progress, SampleStats* stats,
                              const StepFn& step);

// Checks that generators has one entry per sample (x1.size(0)) or none; dit::Error otherwise.
void check_generators(const char* sampler, const torch::Tensor& x1,
                      const std::vector<torch::Generator>& generators);

// z ~ N(0, I) shaped like x [B, ...]. With per-sample generators row i is drawn from
// generators[i] alone, so a sample's noise does not depend on the batch it is in.
torch::Tensor draw_noise(const torch::Tensor& x, const std::vector<torch::Generator>& gens);

}  // namespace dit::samplers_detail
