#include <dit/flow.h>

namespace dit {

torch::Tensor flow_interpolate(const torch::Tensor& x0, const torch::Tensor& eps,
                               const torch::Tensor& t) {
  std::vector<int64_t> shape(x0.dim(), 1);
  shape[0] = -1;
  auto tb = t.to(x0.dtype()).view(shape);  // [B, 1, ...]
  return (1 - tb) * x0 + tb * eps;
}

ConditionalVelocityFn dit_velocity(DiT model) {
  return [model](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) mutable {
    auto out = model->forward(x, t * kTimestepScale, y);  // [B, out, H, W]
    return out.narrow(1, 0, model->config().in_channels);
  };
}

}  // namespace dit
