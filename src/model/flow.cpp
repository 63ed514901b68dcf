#include <dit/error.h>
#include <dit/flow.h>
#include <dit/inference.h>
#include <fmt/format.h>

#include "src/model/prediction.h"

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>

namespace dit {

torch::Tensor flow_interpolate(const torch::Tensor& x0, const torch::Tensor& eps,
                               const torch::Tensor& t) {
  std::vector<int64_t> shape(x0.dim(), 1);
  shape[0] = -1;
  auto tb = t.to(x0.dtype()).view(shape);  // [B, 1, ...]
  return (1 - tb) * x0 + tb * eps;
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                            const torch::Tensor&)>
DiTImpl::inference() {
  // With grad mode off (sampling), the inference path: buffers reused across sampler steps.
  // Linear layers in inference_precision (--precision), else DIT_LINEAR_PRECISION, else fp32.
  DiT model(std::static_pointer_cast<DiTImpl>(shared_from_this()));
  auto inference = std::make_shared<DiTInference>(
      model, inference_precision ? *inference_precision : default_linear_precision());
  return [model, inference](const torch::Tensor& x, const torch::Tensor& t,
                            const FlowInputs& in, const torch::Tensor& d) mutable {
    if (torch::GradMode::is_enabled()) return model->flow(x, t, in, d);
    const auto& c = model->config();
    return detail::model_output(c, inference->forward(x, detail::model_time(c, t), in.labels,
                                                      detail::model_step(c, d)));  // [B, out, H, W]
  };
}

ConditionalFlowMapFn dit_flow_map(DiT model) {
  auto flow = model->inference();
  return [flow](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& d,
                const torch::Tensor& y) {
    FlowInputs in;
    in.labels = y;
    return flow(x, t, in, d);
  };
}

ConditionalVelocityFn velocity_of(ConditionalFlowMapFn flow_map) {
  return [flow_map = std::move(flow_map)](const torch::Tensor& x, const torch::Tensor& t,
                                          const torch::Tensor& y) {
    return flow_map(x, t, torch::Tensor(), y);  // d = 0 (undefined): the velocity
  };
}

ConditionalVelocityFn dit_velocity(DiT model) { return velocity_of(dit_flow_map(std::move(model))); }

namespace {
// Stream id so SDE noise never reuses the initial-noise generator of the same sample.
constexpr uint64_t kSdeStream = 0x5344455ULL;
}  // namespace

torch::Tensor token_noise(uint64_t seed, int64_t first_index, const torch::Tensor& mask,
                          int64_t state_dim) {
  const int64_t B = mask.size(0), N = mask.size(1);
  auto x1 = torch::zeros({B, N, state_dim});
  auto lengths = mask.to(torch::kBool).sum(1);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t n = lengths[i].item<int64_t>();
    auto rows = mask[i].to(torch::kBool).nonzero().squeeze(1);  // the real tokens, in order
    x1[i].index_copy_(0, rows, sample_noise(seed, first_index + i, 1, {n, state_dim})[0]);
  }
  return x1;
}

int64_t guided_channels_for(const FlowNetImpl& net, int64_t requested) {
  if (requested >= 0) return requested;
  return net.prediction() == "flow" ? 0 : 3;  // official forward_with_cfg: "only three channels"
}

namespace {
// The net's inference path where its weights are: inputs go to `device` (cast to `floating` when
// the weights are not float32), the net's input is cast to the weights' dtype and its output back.
struct PlacedFlow {
  torch::Device device = torch::kCPU;
  std::optional<torch::ScalarType> floating;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                              const torch::Tensor&)>
      flow;
  // A chunk's inputs where the weights are (a no-op for float32 weights on the CPU).
  FlowInputs place(const FlowInputs& in_cpu) const {
    return device.is_cpu() && !floating ? in_cpu : in_cpu.to(device, floating);
  }
};
PlacedFlow placed_flow(FlowNetImpl& net, const char* what) {
  const auto params = net.parameters();
  if (params.empty()) throw Error(fmt::format("{}: the network has no parameters", what));
  PlacedFlow p;
  p.device = params.front().device();
  const auto weights = params.front().scalar_type();
  if (weights != torch::kFloat32) p.floating = weights;
  p.flow = [raw = net.inference(), weights](const torch::Tensor& x, const torch::Tensor& t,
                                            const FlowInputs& in, const torch::Tensor& d) {
    if (x.scalar_type() == weights) return raw(x, t, in, d);
    return raw(x.to(weights), t, in, d).to(x.scalar_type());
  };
  return p;
}
}  // namespace

torch::Tensor flow_matching_loss(FlowNetImpl& net, const FlowInputs& inputs, const torch::Tensor& x0,
                                 const torch::Tensor& eps, const torch::Tensor& t, int64_t chunk) {
  torch::NoGradGuard no_grad;
  const int64_t count = x0.size(0);
  if (eps.sizes() != x0.sizes() || t.dim() != 1 || t.size(0) != count ||
      (inputs.batch_size() != 0 && inputs.batch_size() != count))
    throw Error(fmt::format("flow_matching_loss: x0 {}, eps {}, t {} and {} input rows do not match",
                            c10::str(x0.sizes()), c10::str(eps.sizes()), c10::str(t.sizes()),
                            inputs.batch_size()));
  if (chunk < 1) throw Error(fmt::format("flow_matching_loss: chunk must be >= 1, got {}", chunk));
  if (net.prediction() != "flow")
    throw Error(fmt::format("flow_matching_loss: the model predicts {}, not a flow velocity", net.prediction()));
  const PlacedFlow placed = placed_flow(net, "flow_matching_loss");
  std::vector<torch::Tensor> losses;
  for (int64_t first = 0; first < count; first += chunk) {
    const int64_t n = std::min(chunk, count - first);
    const FlowInputs in_cpu = inputs.narrow(first, n);
    const FlowInputs in = placed.place(in_cpu);
    auto x = x0.narrow(0, first, n).to(torch::kFloat32);
    auto e = eps.narrow(0, first, n).to(torch::kFloat32);
    auto tt = t.narrow(0, first, n).to(torch::kFloat32);
    auto v = placed.flow(flow_interpolate(x, e, tt).to(placed.device), tt.to(placed.device), in, {})
                 .to(torch::kCPU, torch::kFloat32);
    auto err = (v - (e - x)).pow(2).flatten(2).mean(2);  // [n, N]: per token
    if (in_cpu.mask.defined()) {
      auto m = in_cpu.mask.to(torch::kFloat32);
      losses.push_back((err * m).sum(1) / m.sum(1).clamp_min(1));
    } else {
      losses.push_back(err.mean(1));
    }
  }
  return torch::cat(losses);
}

torch::Tensor sample_flow(FlowNetImpl& net, const FlowInputs& inputs, const torch::Tensor& x1,
                          const FlowSampling& sampling, Progress& progress,
                          const SampleHooks& hooks, SampleStats* stats, int64_t first_index,
                          torch::Tensor* finite_out) {
  torch::NoGradGuard no_grad;
  const int64_t count = x1.size(0);
  if (inputs.batch_size() != 0 && inputs.batch_size() != count)
    throw Error(fmt::format("sampling: {} inputs for {} noise samples", inputs.batch_size(), count));
  if (sampling.chunk < 1) throw Error(fmt::format("sampling: chunk must be >= 1, got {}", sampling.chunk));
  auto sampler = make_sampler(sampling.sampler);
  if (sampler->uses_flow_map() && !net.step_conditioned())
    throw Error(fmt::format("sampler \"{}\" needs a step-conditioned (few-step) model; this one "
                            "is a plain flow model: use euler, heun, dopri5, ...",
                            sampling.sampler));
  // The model's kind selects the samplers: epsilon models (published DiT checkpoints) run the
  // discrete-time diffusion samplers, every other model the flow samplers.
  const bool epsilon = net.prediction() == "epsilon";
  if (epsilon && !sampler->uses_epsilon())
    throw Error(fmt::format("sampler \"{}\" integrates a velocity; this model predicts epsilon "
                            "(a published DiT checkpoint): use --sampler ddpm or ddim",
                            sampling.sampler));
  if (!epsilon && sampler->uses_epsilon())
    throw Error(fmt::format("sampler \"{}\" needs an epsilon-prediction model (a published DiT "
                            "checkpoint); this one is a {} model: use euler, heun, dopri5, ...",
                            sampling.sampler, net.prediction()));
  GuidanceOptions guidance = sampling.guidance;
  guidance.guided_channels = guided_channels_for(net, guidance.guided_channels);
  const bool cfg = net.num_classes() > 0;
  if (cfg && !inputs.labels.defined())
    throw Error("sampling: this model is class-conditional: give labels (the null class for none)");
  // The net's device and weight dtype (dit image sample --device / --dtype): each chunk's inputs
  // and noise go to that device; the sampler's state stays float32, a bf16 / fp16 net gets its
  // input cast to its dtype and its output cast back; samples come back to the CPU. Noise is
  // drawn on the CPU either way, so a seed gives the same noise on every device.
  const PlacedFlow placed = placed_flow(net, "sampling");
  const torch::Device device = placed.device;
  const auto& flow = placed.flow;  // one inference path (and workspace) for velocity and flow map
  SampleStats total;
  std::vector<torch::Tensor> outputs, finites;
  for (int64_t first = 0; first < count; first += sampling.chunk) {
    const int64_t n = std::min(sampling.chunk, count - first);
    const FlowInputs in_cpu = inputs.narrow(first, n);
    const FlowInputs in = placed.place(in_cpu);
    // The chunk's model at step size d: CFG calls it with the labels of a B or 2B batch (the
    // conditional and the null labels); every other input follows the batch.
    auto conditional = [&](const torch::Tensor& d) {
      return ConditionalFlowMapFn([&, in, d](const torch::Tensor& x, const torch::Tensor& t,
                                          const torch::Tensor& dd, const torch::Tensor& y) {
        FlowInputs rows = x.size(0) == n ? in : in.repeat(x.size(0) / n);
        rows.labels = y;
        const auto& step = dd.defined() ? dd : d;
        return flow(x, t, rows,
                    step.defined() && step.size(0) != x.size(0) ? step.repeat({x.size(0) / step.size(0)}) : step);
      });
    };
    auto guided = [&](const torch::Tensor& d) -> VelocityFn {
      auto model = velocity_of(conditional(d));
      if (cfg) return classifier_free_guidance(model, in.labels, net.num_classes(), guidance);
      return [model](const torch::Tensor& x, const torch::Tensor& t) { return model(x, t, {}); };
    };
    // Domain hooks run on the CPU with the chunk's CPU inputs: on a GPU, x and v cross over
    // around them (structure domains: small tensors, CPU-side physics).
    auto domain = [&](VelocityFn v) -> VelocityFn {
      if (!hooks.guide) return v;
      if (device.is_cpu()) return hooks.guide(std::move(v), in);
      VelocityFn host = [v = std::move(v), device](const torch::Tensor& x, const torch::Tensor& t) {
        return v(x.to(device), t.to(device)).cpu();
      };
      return [g = hooks.guide(std::move(host), in_cpu), device](const torch::Tensor& x,
                                                                const torch::Tensor& t) {
        return g(x.cpu(), t.cpu()).to(device);
      };
    };
    SampleOptions opts = sampling.options;
    if (sampler->uses_flow_map())  // guidance applies to the flow map at each step size
      opts.flow_map = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& d) {
        auto out = domain(guided(d))(x, t);
        progress.advance();
        return out;
      };
    if (hooks.project)
      opts.project = [&](torch::Tensor& x, double t) {
        if (device.is_cpu()) return hooks.project(x, t, in);
        auto host = x.cpu();
        hooks.project(host, t, in_cpu);
        x.copy_(host);
      };
    opts.generators.clear();
    for (int64_t i = 0; i < n; ++i)
      opts.generators.push_back(sample_generator(
          sampling.seed ^ kSdeStream, static_cast<uint64_t>(first_index + first + i)));
    const VelocityFn v = domain(guided({}));
    auto counted = [&](const torch::Tensor& x, const torch::Tensor& t) {
      auto out = v(x, t);
      progress.advance();
      return out;
    };
    SampleStats chunk_stats;
    Progress inner;  // silent: `progress` counts evaluations across chunks
    auto x0 = sampler->sample(counted, x1.narrow(0, first, n).to(device), opts, inner, &chunk_stats)
                  .to(torch::kCPU);
    // Stats describe one trajectory: the most expensive chunk (chunks differ for dopri5).
    total.nfe = std::max(total.nfe, chunk_stats.nfe);
    total.steps = std::max(total.steps, chunk_stats.steps);
    total.rejected = std::max(total.rejected, chunk_stats.rejected);
    auto finite = torch::isfinite(x0).flatten(1).all(1);
    if (finite_out) {
      finites.push_back(finite);
    } else if (!finite.all().item<bool>()) {
      int64_t bad = finite.logical_not().nonzero()[0][0].item<int64_t>();
      throw Error(fmt::format("sample {} (seed {}) became non-finite during sampling",
                              first_index + first + bad, sampling.seed));
    }
    outputs.push_back(x0);
  }
  if (stats) *stats = total;
  if (finite_out) *finite_out = torch::cat(finites);
  return torch::cat(outputs);  // [count, ...]
}

}  // namespace dit
