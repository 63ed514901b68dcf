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

// ---- the one sampling path (images and every structure domain) --------------------------------

// The guided channels for `net` (GuidanceOptions::guided_channels): `requested` when >= 0, else
// the model's kind decides: 3 for the published DiT and SiT checkpoints (their forward_with_cfg
// guides the first 3 of 4 latent channels), 0 (all) for our own flow models.
int64_t guided_channels_for(const FlowNetImpl& net, int64_t requested);

// How samples are drawn: the sampler by name, its options, guidance and seed.
struct FlowSampling {
  std::string sampler = "euler";
  SampleOptions options;      // generators are filled per sample by sample_flow
  GuidanceOptions guidance;   // scale 1: no CFG (CFG needs labels and a class-conditional net)
  uint64_t seed = 42;
  int64_t chunk = 64;         // samples per model batch
};

// What a domain adds to the sampling path, without the samplers knowing what a domain is.
struct SampleHooks {
  // A constraint applied after every sampler step to the chunk's x (centring, periodic wrap,
  // zeroed padding); `inputs` are the chunk's rows.
  std::function<void(torch::Tensor& x, double t, const FlowInputs& inputs)> project;
  // A wrapper around the (CFG-guided) velocity of a chunk: physics guidance, e.g. docking's
  // score gradient on the predicted clean sample x0 = x - t v.
  std::function<VelocityFn(VelocityFn velocity, const FlowInputs& inputs)> guide;
};

// Integrates one sample per row of `inputs` from the noise x1 [B, ...] (t = 1) to t = 0 with
// the sampler `sampling.sampler` (flow-map samplers for step-conditioned nets), classifier-free
// guidance over inputs.labels, and the domain's hooks, `sampling.chunk` rows per model batch.
// SDE noise of row i comes from a generator seeded by (seed, first_index + i), so a sample does
// not depend on the batch or chunk it is in. `progress` counts velocity evaluations; `stats`
// describe one trajectory (the largest over the chunks). A non-finite sample is a dit::Error
// naming its index and seed, unless `finite` is given: then it receives a bool [B] mask.
torch::Tensor sample_flow(FlowNetImpl& net, const FlowInputs& inputs, const torch::Tensor& x1,
                          const FlowSampling& sampling, Progress& progress,
                          const SampleHooks& hooks = {}, SampleStats* stats = nullptr,
                          int64_t first_index = 0, torch::Tensor* finite = nullptr);

// The flow-matching loss of given clean samples, per row: |v(x_t, t) - (eps - x0)|^2 averaged
// over the real tokens (inputs.mask) and their numbers, x_t = flow_interpolate(x0, eps, t), on the
// net's inference path (grad mode off, where its weights are). x0 and eps [B, N, C] (token sets),
// t [B] in [0, 1]; returns [B] float32 on the CPU. Averaged over (t, eps) draws it estimates how
// unlike the training data a structure is (the ELBO's terms up to a weighting of t; Li et al.
// 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier"): to compare candidates, give
// each the same draws, so that differences are the candidates' and not the noise's.
torch::Tensor flow_matching_loss(FlowNetImpl& net, const FlowInputs& inputs, const torch::Tensor& x0,
                                 const torch::Tensor& eps, const torch::Tensor& t, int64_t chunk = 64);

// Initial noise of token sets: x1 [B, N, state_dim] where row i holds N(0, I) draws of the
// generator (seed, first_index + i) over its own real tokens (mask [B, N], true = real) and
// zeros at padding, so a sample's noise does not depend on the padding of its batch.
torch::Tensor token_noise(uint64_t seed, int64_t first_index, const torch::Tensor& mask,
                          int64_t state_dim);

// The velocity of a flow map: u(x, t, d = 0, y) (dit_velocity is this of dit_flow_map; callers
// that need both share one inference path this way).
ConditionalVelocityFn velocity_of(ConditionalFlowMapFn flow_map);

}  // namespace dit
