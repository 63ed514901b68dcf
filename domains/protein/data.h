#pragma once
// Internal to libdit_protein: the training chains (a prepared HDF5 file, docs/protein-data.md)
// as dit::TrainingData for the one trainer.
#include <dit/train.h>

#include <string>
#include <vector>

namespace dit::protein {

struct Chain {
  std::string name;
  torch::Tensor ca;  // [L, 3] angstrom
};

// The chains of `split` (0 training, 1 held out) with min_length <= L <= max_length, read from
// `path` (datasets coords [R, 5, 3], offsets [n + 1], split [n], names [n]). Errors name the
// file and the dataset.
std::vector<Chain> load_chains(const std::string& path, int split, int64_t min_length, int64_t max_length);

// C-alpha traces as token sets: centred, rotated at random (a pure function of the step's
// generator), in model units; residue features and the length condition from model.h.
class ProteinData final : public TrainingData {
 public:
  explicit ProteinData(std::vector<Chain> chains);
  int64_t size() const override { return static_cast<int64_t>(chains_.size()); }
  TrainBatch get(const torch::Tensor& index, at::Generator& gen) const override;
  void check(const FlowNetImpl& net) const override;

 private:
  std::vector<Chain> chains_;
};

}  // namespace dit::protein
