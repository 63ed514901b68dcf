#pragma once
// Rectified-flow glue between the DiT and the samplers (time convention in sampler.h):
// x_t = (1 - t) x0 + t eps, target v = eps - x0.
#include <dit/guidance.h>
#include <dit/model.h>

namespace dit {

// x_t for x0, eps [B, ...] and t [B].
torch::Tensor flow_interpolate(const torch::Tensor& x0, const torch::Tensor& eps,
                               const torch::Tensor& t);

// v(x, t, y) of a DiT: runs the model at timestep t * kTimestepScale and keeps the first
// in_channels output channels (the variance channels of learn_sigma models are dropped).
// With grad mode off it runs the inference path (DiTInference, dit/inference.h), with bf16
// linear layers when the environment variable DIT_LINEAR_PRECISION=bf16 is set.
ConditionalVelocityFn dit_velocity(DiT model);

// u(x, t, d, y) of a step-conditioned DiT (few-step models, see FlowMapFn in dit/sampler.h):
// t and d in [0, 1], both scaled by kTimestepScale for the model. Same paths as dit_velocity.
using ConditionalFlowMapFn =
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& d, const torch::Tensor& y)>;
ConditionalFlowMapFn dit_flow_map(DiT model);

// The velocity of a flow map: u(x, t, d = 0, y) (dit_velocity is this of dit_flow_map; callers
// that need both share one inference path this way).
ConditionalVelocityFn velocity_of(ConditionalFlowMapFn flow_map);

}  // namespace dit
