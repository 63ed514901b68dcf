#pragma once
// Internal helpers shared by the few-step objectives (shortcut, progressive).
#include <dit/model.h>
#include <torch/torch.h>

namespace dit::few_step {

// Broadcasts a per-sample [B] tensor against x [B, ...].
inline torch::Tensor per_sample(const torch::Tensor& s, const torch::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = -1;
  return s.to(x.dtype()).view(shape);
}

// u(x, t, d, y) of `model` without autograd, with times in [0, 1] and per-sample CFG scale
// w [B] (v = v_u + w (v_c - v_u), Ho & Salimans 2022; w = 1 needs only the conditional
// half but the batch runs both halves in one 2B forward whenever any w != 1). d undefined:
// the model's velocity (d = 0, or a plain flow model).
inline torch::Tensor guided_flow_map(DiT& model, const torch::Tensor& x, const torch::Tensor& t,
                                     const torch::Tensor& d, const torch::Tensor& y,
                                     const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0), C = model->config().in_channels;
  auto ds = d.defined() ? d * kTimestepScale : d;
  if (!(w != 1).any().item<bool>())
    return model->forward(x, t * kTimestepScale, y, ds).narrow(1, 0, C);
  auto y_null = torch::full_like(y, model->config().null_class());
  auto out = model->forward(torch::cat({x, x}), torch::cat({t, t}) * kTimestepScale,
                            torch::cat({y, y_null}), ds.defined() ? torch::cat({ds, ds}) : ds)
                 .narrow(1, 0, C);
  auto v_c = out.narrow(0, 0, B), v_u = out.narrow(0, B, B);
  return v_u + per_sample(w, x) * (v_c - v_u);
}

}  // namespace dit::few_step
