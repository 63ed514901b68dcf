#pragma once
// Internal to libdit_docking: starting poses sampled by the docking DiT (flow matching on ligand
// heavy-atom coordinates given pocket atoms as context), projected onto the ligand's internal
// geometry (rigid body + torsions fitted to the sample), with score-gradient guidance.
#include "domains/docking/scoring.h"

#include <string>
#include <vector>

namespace dit::docking {

struct ProposalSettings {
  std::string model_path;
  std::string sampler = "euler";
  int steps = 20;
  double guidance = 1.0;
  uint64_t seed = 0;
};

// The pose of the ligand's own geometry nearest to `target` (heavy atoms in topology order).
Pose fit_pose(const LigandTopology& topology, const std::vector<Vec3>& target);

std::vector<Pose> model_starts(const LigandTopology& topology, const RDKit::ROMol& ligand,
                               const Receptor& pocket, const ReceptorGrid& grid, const Box& box,
                               int count, const ProposalSettings& settings);

}  // namespace dit::docking
