// Monte Carlo + local optimisation pose search (see search.h).
#include "domains/docking/search.h"

#include <ATen/Parallel.h>
#include <dit/runtime.h>

#include <atomic>
#include <cmath>
#include <mutex>

namespace dit::docking {

Pose random_pose(const LigandTopology& ligand, const Box& box, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  Pose pose = ligand.identity_pose();
  for (int k = 0; k < 3; ++k) pose.position[k] = box.center[k] + (unit(rng) - 0.5) * box.size[k];
  pose.orientation = Quaternion::random(rng);
  for (double& t : pose.torsions) t = M_PI * (2 * unit(rng) - 1);
  return pose;
}

namespace {
// One Vina-style mutation: move, turn, or re-draw one torsion.
Pose mutate(const Pose& pose, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 1);
  const int choices = 2 + static_cast<int>(pose.torsions.size());
  const int which = std::uniform_int_distribution<int>(0, choices - 1)(rng);
  Pose out = pose;
  if (which == 0) {
    for (int k = 0; k < 3; ++k) out.position[k] += normal(rng);
  } else if (which == 1) {
    const Vec3 w{0.3 * normal(rng), 0.3 * normal(rng), 0.3 * normal(rng)};
    out.orientation = Quaternion::from_rotation_vector(w) * pose.orientation;
    out.orientation.normalize();
  } else {
    out.torsions[which - 2] = std::uniform_real_distribution<double>(-M_PI, M_PI)(rng);
  }
  return out;
}
}  // namespace

std::vector<SearchHit> search_poses(const LigandTopology& ligand, const ReceptorGrid& grid,
                                    const std::vector<Pose>& starts, const SearchSettings& settings,
                                    uint64_t seed, int64_t* evaluations) {
  const PoseObjective objective = [&](const Pose& p, PoseGradient* g) {
    return pose_energy(ligand, grid, p, g).total();
  };
  std::vector<std::vector<SearchHit>> per_start(starts.size());
  std::atomic<int64_t> count{0};
  at::parallel_for(0, static_cast<int64_t>(starts.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(s)));
      auto current = minimize_pose(objective, starts[s], settings.local_iterations);
      int64_t evals = current.evaluations;
      auto& hits = per_start[s];
      hits.push_back({current.pose, current.value, static_cast<int>(s)});
      std::uniform_real_distribution<double> unit(0, 1);
      for (int step = 0; step < settings.mc_steps; ++step) {
        auto candidate = minimize_pose(objective, mutate(current.pose, rng), settings.local_iterations);
        evals += candidate.evaluations;
        if (!std::isfinite(candidate.value)) continue;
        const double delta = candidate.value - current.value;
        if (delta < 0 || unit(rng) < std::exp(-delta / settings.temperature)) {
          current = candidate;
          hits.push_back({current.pose, current.value, static_cast<int>(s)});
        }
      }
      count += evals;
    }
  });
  std::vector<SearchHit> all;
  for (auto& hits : per_start)
    for (auto& h : hits) all.push_back(std::move(h));
  if (evaluations) *evaluations += count.load();
  return all;
}


}  // namespace dit::docking
