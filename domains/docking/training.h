#pragma once
// Internal to libdit_docking: the training poses of the docking DiT (train_docking_model in
// dit/docking.h).
#include <dit/train.h>

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

// The examples as training data of the one trainer: ligand tokens (features, coordinates x0,
// padding mask) with the pocket as context tokens, each complex rotated at random about the
// box center and the center moved by N(0, center_jitter) A.
class DockingData final : public TrainingData {
 public:
  DockingData(std::vector<DockExample> examples, double center_jitter);
  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }
  TrainBatch get(const torch::Tensor& index, at::Generator& gen) const override;

 private:
  std::vector<DockExample> examples_;
  double center_jitter_;
};

}  // namespace dit::docking
