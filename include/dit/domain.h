#pragma once
// Domains: the adapters between what a user asks for (a class label, a ligand in a pocket, a
// backbone length, a composition) and the one network and sampling path. A domain is a folder
// (domains/<name>/) holding only what is its own: encode / decode, its constraint (project),
// its guidance, its checks and writers. Everything else is shared: the network
// (dit::TokenDiT / dit::DiT), the trainer (dit::FlowMatchingTrainer with the domain's
// dit::TrainingData), the samplers (registry by name) and dit::sample_flow.
//
// The flow of one batch (DESIGN.md):
//   inputs = domain.encode(requests)              FlowInputs: features, mask, context, labels
//   x1 = domain.noise(inputs, seed, first)        seeded per sample index
//   x0 = sample_flow(net, inputs, x1, ..., hooks)  hooks: domain.project after every step,
//                                                  domain.guide around the velocity
//   structures = domain.decode(x0, inputs, requests)
//   reports = domain.check(structure) for each    flagged, never dropped
#include <dit/check.h>
#include <dit/flow.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dit {

class Domain {
 public:
  virtual ~Domain() = default;
  virtual std::string name() const = 0;
  // The constraint applied after every sampler step to x [B, N, C] (or an image batch). The
  // default zeroes the padded tokens (inputs.mask false), so padding never drifts.
  virtual void project(torch::Tensor& x, double t, const FlowInputs& inputs) const;
  // A wrapper around the velocity (physics guidance); the default returns it unchanged.
  virtual VelocityFn guide(VelocityFn velocity, const FlowInputs& inputs) const { return velocity; }
  // project and guide as the sampling path's hooks (the domain must outlive them).
  SampleHooks hooks() const;
};

// A domain over requests R and structures S.
template <class R, class S>
class StructureDomain : public Domain {
 public:
  // One row per request, padded to the longest.
  virtual FlowInputs encode(const std::vector<R>& requests) const = 0;
  // The initial noise of the batch: by default token_noise over inputs.mask with state_dim()
  // numbers per token (row i seeded by (seed, first_index + i)).
  virtual torch::Tensor noise(const FlowInputs& inputs, uint64_t seed, int64_t first_index) const {
    return token_noise(seed, first_index, inputs.mask, state_dim());
  }
  virtual int64_t state_dim() const = 0;
  virtual std::vector<S> decode(const torch::Tensor& x0, const FlowInputs& inputs,
                                const std::vector<R>& requests) const = 0;
  // The guidance of a batch of requests (inputs.rows maps a chunk's rows to `requests`); the
  // default is the request-free guide above.
  virtual VelocityFn guide_requests(VelocityFn velocity, const FlowInputs& inputs,
                                    const std::vector<R>& requests) const {
    return guide(std::move(velocity), inputs);
  }
  // The domain's checks on one structure (default: its CheckRegistry<S>).
  virtual CheckReport check(const S& structure) const {
    return CheckRegistry<S>::instance().run(structure);
  }
};

template <class S>
struct Generated {
  S structure;
  CheckReport checks;
  bool finite = true;  // false: the sample became non-finite (its structure is undefined)
  int64_t index = 0;   // sample index (its noise is seeded by (seed, index))
};

// The one pipeline: encode, noise, sample_flow with the domain's hooks, decode, check. Samples
// that fail their checks or became non-finite are returned flagged, never dropped.
template <class R, class S>
std::vector<Generated<S>> generate(const StructureDomain<R, S>& domain, FlowNetImpl& net,
                                   const std::vector<R>& requests, const FlowSampling& sampling,
                                   Progress& progress, int64_t first_index = 0) {
  auto inputs = domain.encode(requests);
  inputs.rows = torch::arange(static_cast<int64_t>(requests.size()), torch::kLong);
  auto x1 = domain.noise(inputs, sampling.seed, first_index);
  auto hooks = domain.hooks();
  hooks.guide = [&](VelocityFn v, const FlowInputs& in) {
    return domain.guide_requests(std::move(v), in, requests);
  };
  torch::Tensor finite;
  auto x0 = sample_flow(net, inputs, x1, sampling, progress, hooks, nullptr, first_index, &finite);
  auto structures = domain.decode(torch::nan_to_num(x0, 0, 0, 0), inputs, requests);
  std::vector<Generated<S>> out;
  for (size_t i = 0; i < structures.size(); ++i) {
    Generated<S> g;
    g.finite = finite[static_cast<int64_t>(i)].item<bool>();
    g.index = first_index + static_cast<int64_t>(i);
    if (g.finite) g.checks = domain.check(structures[i]);
    g.structure = std::move(structures[i]);
    out.push_back(std::move(g));
  }
  return out;
}

// Registry by name: each domain registers itself from its own folder
//   static const bool registered = dit::register_domain("name", "...", factory);
// (the first registration of a name wins; a second returns false).
using DomainFactory = std::function<std::unique_ptr<Domain>()>;
bool register_domain(const std::string& name, const std::string& description, DomainFactory factory);
std::unique_ptr<Domain> make_domain(const std::string& name);  // throws dit::Error if unknown
std::vector<std::pair<std::string, std::string>> list_domains();  // (name, description)

}  // namespace dit
