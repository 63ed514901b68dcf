#pragma once
// Internal to libdit_docking: the pose search (Monte Carlo + L-BFGS, as AutoDock Vina's, from
// any starting poses) and where starting poses come from.
#include "domains/docking/optimize.h"
#include "domains/docking/scoring.h"

#include <random>

namespace dit::docking {

// A pose drawn uniformly: position in the box, orientation on SO(3), torsions in (-pi, pi].
Pose random_pose(const LigandTopology& ligand, const Box& box, std::mt19937_64& rng);

struct SearchSettings {
  int mc_steps = 30;
  double temperature = 1.2;  // kcal/mol, Vina's Metropolis temperature
  int local_iterations = 200;
};

struct SearchHit {
  Pose pose;
  double energy = 0;  // inter + intra (grid)
  int start = 0;
};

// From each start: L-BFGS, then `mc_steps` Metropolis steps (mutate one of position,
// orientation or one torsion; L-BFGS; accept by exp(-dE / T)). Returns every accepted local
// minimum of every start (starts run in parallel; each draws from mix_seed(seed, start)).
std::vector<SearchHit> search_poses(const LigandTopology& ligand, const ReceptorGrid& grid,
                                    const std::vector<Pose>& starts, const SearchSettings& settings,
                                    uint64_t seed, int64_t* evaluations);


}  // namespace dit::docking
