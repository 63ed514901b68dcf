#pragma once
// An analytic flow for sampler tests: data x0 ~ N(mu, s^2) per dimension, eps ~ N(0, 1),
// independent coupling, x_t = (1 - t) x0 + t eps. The marginal of x_t is N(m_t, sigma_t^2)
// with m_t = (1 - t) mu and sigma_t = sqrt((1 - t)^2 s^2 + t^2), the exact velocity field is
//   v(x, t) = m_t' + (sigma_t' / sigma_t) (x - m_t),
// and the exact ODE solution from x1 (t = 1) is x0 = mu + s x1.
#include <dit/sampler.h>
#include <torch/torch.h>

#include <vector>

namespace dit::test {

struct GaussianFlow {
  torch::Tensor mu, s;  // [D], double

  explicit GaussianFlow(std::vector<double> mu_, std::vector<double> s_)
      : mu(torch::tensor(mu_, torch::kFloat64)), s(torch::tensor(s_, torch::kFloat64)) {}

  int64_t dim() const { return mu.size(0); }

  // v(x, t): x [B, D], t [B]. Element-wise only, so a row's value does not depend on its batch.
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& t) const {
    const torch::Tensor tt = t.reshape({-1, 1});                        // [B, 1]
    const torch::Tensor one_m = 1.0 - tt;                               // 1 - t
    const torch::Tensor m = one_m * mu;                                 // m_t: [B, D]
    const torch::Tensor s2 = s * s;                                     // [D]
    const torch::Tensor var = one_m * one_m * s2 + tt * tt;             // sigma_t^2
    const torch::Tensor dvar_half = tt - one_m * s2;                    // sigma_t sigma_t'
    return (x - m) * (dvar_half / var) - mu;                            // m_t' = -mu
  }

  VelocityFn fn() const {
    return [this](const torch::Tensor& x, const torch::Tensor& t) { return velocity(x, t); };
  }

  torch::Tensor exact_x0(const torch::Tensor& x1) const { return x1 * s + mu; }
};

}  // namespace dit::test

namespace dit::test {

// Data x0 drawn per dimension from a 1-D Gaussian mixture sum_k w_k N(mu_k, s_k^2) (the same
// mixture in every dimension), eps ~ N(0, 1), x_t = (1 - t) x0 + t eps. The exact velocity is
// the posterior average of the per-component fields,
//   v(x, t) = sum_k pi_k(x, t) [m_k' + (sigma_k' / sigma_k)(x - m_k)],
//   pi_k proportional to w_k N(x; m_k(t), sigma_k(t)^2),
// which is nonlinear in x (curved trajectories). The ODE solution has no closed form.
struct GaussianMixtureFlow {
  torch::Tensor w, mu, s;  // [K], double

  GaussianMixtureFlow(std::vector<double> w_, std::vector<double> mu_, std::vector<double> s_)
      : w(torch::tensor(w_, torch::kFloat64)),
        mu(torch::tensor(mu_, torch::kFloat64)),
        s(torch::tensor(s_, torch::kFloat64)) {}

  // v(x, t): x [B, D], t [B].
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& t) const {
    const torch::Tensor tt = t.reshape({-1, 1, 1});                     // [B, 1, 1]
    const torch::Tensor xx = x.unsqueeze(-1);                           // [B, D, 1]
    const torch::Tensor one_m = 1.0 - tt;
    const torch::Tensor m = one_m * mu;                                 // m_k(t): [B, 1, K]
    const torch::Tensor s2 = s * s;                                     // [K]
    const torch::Tensor var = one_m * one_m * s2 + tt * tt;             // sigma_k(t)^2
    const torch::Tensor dvar_half = tt - one_m * s2;                    // sigma_k sigma_k'
    const torch::Tensor log_p = (xx - m).square() / var * -0.5 - var.log() * 0.5 + w.log();
    const torch::Tensor pi = torch::softmax(log_p, -1);                 // [B, D, K]
    const torch::Tensor v_k = (xx - m) * (dvar_half / var) - mu;        // [B, D, K]
    return (pi * v_k).sum(-1);                                          // [B, D]
  }

  VelocityFn fn() const {
    return [this](const torch::Tensor& x, const torch::Tensor& t) { return velocity(x, t); };
  }
};

}  // namespace dit::test
