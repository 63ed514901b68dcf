// L-BFGS over poses (see optimize.h).
#include "domains/docking/optimize.h"

#include <cmath>
#include <deque>

namespace dit::docking {

LocalOptimum minimize_pose(const PoseObjective& f, const Pose& start, int max_iterations,
                           double gradient_tolerance) {
  constexpr int kMemory = 8;
  constexpr double kArmijo = 1e-4;
  LocalOptimum out;
  out.pose = start;
  PoseGradient g;
  out.value = f(out.pose, &g);
  ++out.evaluations;
  std::deque<std::pair<PoseGradient, PoseGradient>> history;  // (s, y)
  std::deque<double> rho;
  for (int it = 0; it < max_iterations; ++it) {
    if (!std::isfinite(out.value)) break;
    if (std::sqrt(g.dot(g)) < gradient_tolerance) break;
    // Two-loop recursion: d = -H g.
    PoseGradient q = g;
    std::vector<double> alpha(history.size());
    for (int i = static_cast<int>(history.size()) - 1; i >= 0; --i) {
      alpha[i] = rho[i] * history[i].first.dot(q);
      q.axpy(-alpha[i], history[i].second);
    }
    double gamma = 1.0;
    if (!history.empty()) {
      const auto& [s, y] = history.back();
      gamma = s.dot(y) / y.dot(y);
    } else {
      gamma = std::min(1.0, 0.1 / std::sqrt(g.dot(g)));  // first step: at most ~0.1 in norm
    }
    q.scale(gamma);
    for (size_t i = 0; i < history.size(); ++i) {
      const double beta = rho[i] * history[i].second.dot(q);
      q.axpy(alpha[i] - beta, history[i].first);
    }
    q.scale(-1);
    double slope = q.dot(g);
    if (!(slope < 0)) {  // not a descent direction: restart from steepest descent
      history.clear(), rho.clear();
      q = g;
      q.scale(-std::min(1.0, 0.1 / std::sqrt(g.dot(g))));
      slope = q.dot(g);
    }
    double step = 1.0;
    Pose trial;
    PoseGradient g_new;
    double value = 0;
    bool accepted = false;
    for (int ls = 0; ls < 20; ++ls, step *= 0.5) {
      trial = advance(out.pose, q, step);
      value = f(trial, &g_new);
      ++out.evaluations;
      if (std::isfinite(value) && value <= out.value + kArmijo * step * slope) {
        accepted = true;
        break;
      }
    }
    out.iterations = it + 1;
    if (!accepted) break;
    PoseGradient s = q;
    s.scale(step);
    PoseGradient y = g_new;
    y.axpy(-1, g);
    const double sy = s.dot(y);
    if (sy > 1e-10) {
      history.emplace_back(std::move(s), std::move(y));
      rho.push_back(1.0 / sy);
      if (static_cast<int>(history.size()) > kMemory) history.pop_front(), rho.pop_front();
    }
    const double improvement = out.value - value;
    out.pose = trial;
    out.value = value;
    g = g_new;
    if (improvement < 1e-6 * (1 + std::abs(value))) break;
  }
  return out;
}

}  // namespace dit::docking
