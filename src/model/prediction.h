#pragma once
// How each kind of DiT (DiTConfig::prediction) maps onto the sampling path's terms: the time
// the network is called with, and what of its output the samplers see. One copy, used by
// DiTImpl::flow (autograd) and DiTImpl::inference (sampling).
#include <dit/error.h>
#include <dit/model.h>

namespace dit::detail {

// t [B] in [0, 1] (DESIGN.md convention; for "epsilon": timestep / 1000) -> the network's time.
inline torch::Tensor model_time(const DiTConfig& c, const torch::Tensor& t) {
  if (c.prediction == "sit") return 1.0 - t;  // SiT: s = 1 - t, s = 0 noise, not scaled
  return t * kTimestepScale;                  // flow and epsilon: reference timestep units
}

// The network output [B, out_channels, H, W] -> what flow() returns: flow: the first C channels
// (the velocity); sit: minus the first C (SiT's velocity x0 - eps, ours eps - x0); epsilon: every
// channel (epsilon and the learned-range variance values: the diffusion samplers use both).
inline torch::Tensor model_output(const DiTConfig& c, const torch::Tensor& out) {
  if (c.prediction == "epsilon") return out;
  auto v = out.narrow(1, 0, c.in_channels);  // v: [B, C, H, W]
  return c.prediction == "sit" ? -v : v;
}

// Step sizes d exist only for step-conditioned flow models (DiTConfig::validate refuses the
// other kinds with step conditioning).
inline torch::Tensor model_step(const DiTConfig&, const torch::Tensor& d) {
  return d.defined() ? d * kTimestepScale : d;
}

}  // namespace dit::detail
