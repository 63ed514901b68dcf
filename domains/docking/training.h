#pragma once
// Internal to libdit_docking: the training poses of the docking DiT (train_docking_model in
// dit/docking.h).
#include <string>
#include <vector>

#include "domains/docking/model.h"

namespace dit::docking {

// One training example: a ligand pose in its pocket, in model units (see model.h).
struct DockExample {
  std::string source;
  torch::Tensor ligand;   // [L, kLigandFeatures]
  torch::Tensor x0;       // [L, 3] heavy-atom coordinates, relative to the box center / scale
  torch::Tensor pocket;   // [P, kPocketFeatures + 3]
};

// Reads every complex folder below `dirs` (see dit dock-train --help); a folder that fails is
// reported and skipped.
std::vector<DockExample> load_dock_examples(const std::vector<std::string>& dirs, int64_t max_pocket_atoms);

}  // namespace dit::docking
