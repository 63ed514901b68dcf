#include <dit/flow.h>
#include <dit/inference.h>

#include <cstdlib>
#include <memory>

namespace dit {

torch::Tensor flow_interpolate(const torch::Tensor& x0, const torch::Tensor& eps,
                               const torch::Tensor& t) {
  std::vector<int64_t> shape(x0.dim(), 1);
  shape[0] = -1;
  auto tb = t.to(x0.dtype()).view(shape);  // [B, 1, ...]
  return (1 - tb) * x0 + tb * eps;
}

ConditionalFlowMapFn dit_flow_map(DiT model) {
  // With grad mode off (sampling), the inference path: buffers reused across sampler steps.
  // DIT_LINEAR_PRECISION=bf16 selects bfloat16 linear layers there (see dit/inference.h).
  const char* env = std::getenv("DIT_LINEAR_PRECISION");
  auto inference = std::make_shared<DiTInference>(
      model, parse_linear_precision(env ? env : "", "DIT_LINEAR_PRECISION"));
  return [model, inference](const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& d, const torch::Tensor& y) mutable {
    auto ds = d.defined() ? d * kTimestepScale : d;
    auto out = torch::GradMode::is_enabled()
                   ? model->forward(x, t * kTimestepScale, y, ds)       // [B, out, H, W]
                   : inference->forward(x, t * kTimestepScale, y, ds);  // same, no autograd
    return out.narrow(1, 0, model->config().in_channels);
  };
}

ConditionalVelocityFn velocity_of(ConditionalFlowMapFn flow_map) {
  return [flow_map = std::move(flow_map)](const torch::Tensor& x, const torch::Tensor& t,
                                          const torch::Tensor& y) {
    return flow_map(x, t, torch::Tensor(), y);  // d = 0 (undefined): the velocity
  };
}

ConditionalVelocityFn dit_velocity(DiT model) { return velocity_of(dit_flow_map(std::move(model))); }

}  // namespace dit
