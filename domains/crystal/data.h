#pragma once
// Internal to libdit_crystal: the prepared training file (scripts/crystal/prepare.py, layout in
// docs/crystal.md) as the trainer's TrainingData.
#include <dit/crystal.h>

namespace dit::crystal {

// Crystals of split `split` (0 train, 1 held out) with at most `max_atoms` atoms; their space
// groups (spglib at 0.1 A, 0 unknown) into `spacegroups` when given. Errors name the file and dataset.
std::vector<Crystal> load_crystals(const std::string& path, int split, int64_t max_atoms,
                                   std::vector<int>* spacegroups = nullptr);
// Mean and standard deviation of the lattice numbers (model.h) over `crystals`.
LatticeScaling fit_lattice_scaling(const std::vector<Crystal>& crystals);

// Crystals as token sets: lattice tokens standardised, atoms at a random origin, the periodic
// mask on the atom tokens (TrainBatch::periodic), the space group as the label.
class CrystalData final : public TrainingData {
 public:
  CrystalData(std::vector<Crystal> crystals, std::vector<int> spacegroups, LatticeScaling scaling);
  int64_t size() const override { return static_cast<int64_t>(crystals_.size()); }
  TrainBatch get(const torch::Tensor& index, at::Generator& gen) const override;
  void check(const FlowNetImpl& net) const override;

 private:
  std::vector<Crystal> crystals_;
  std::vector<int> spacegroups_;
  LatticeScaling scaling_;
};

}  // namespace dit::crystal
