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

// u(x, t, d | inputs) of `net` without autograd, with times in [0, 1] and per-sample CFG scale
// w [B] (v = v_u + w (v_c - v_u), Ho & Salimans 2022; w = 1 needs only the conditional
// half but the batch runs both halves in one 2B forward whenever any w != 1). d undefined:
// the model's velocity (d = 0, or a plain flow model). Nets without labels ignore w.
inline torch::Tensor guided_flow_map(FlowNetImpl& net, const torch::Tensor& x,
                                     const torch::Tensor& t, const torch::Tensor& d,
                                     const FlowInputs& in, const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0);
  if (net.num_classes() == 0 || !in.labels.defined() || !(w != 1).any().item<bool>())
    return net.flow(x, t, in, d);
  auto unconditional = in;
  unconditional.labels = torch::full_like(in.labels, net.num_classes());
  auto out = net.flow(torch::cat({x, x}), torch::cat({t, t}), FlowInputs::cat(in, unconditional),
                      d.defined() ? torch::cat({d, d}) : d);
  auto v_c = out.narrow(0, 0, B), v_u = out.narrow(0, B, B);
  return v_u + per_sample(w, x) * (v_c - v_u);
}

}  // namespace dit::few_step
