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
  std::string ss;    // 3-state secondary structure (three_state of the file's dssp: H, E, -); empty without one
};

// The chains of `split` (0 training, 1 held out) with min_length <= L <= max_length, read from
// `path` (datasets coords [R, 5, 3], offsets [n + 1], split [n], names [n], and dssp [R] when
// present). Errors name the file and the dataset.
std::vector<Chain> load_chains(const std::string& path, int split, int64_t min_length, int64_t max_length);

// C-alpha traces as token sets: centred, rotated at random (a pure function of the step's
// generator), in model units; residue features and the length condition from model.h. With
// `secondary_structure`, the residues' 3-state strings too, each chain's left out (not given)
// with probability `ss_dropout`.
class ProteinData final : public TrainingData {
 public:
  explicit ProteinData(std::vector<Chain> chains, bool secondary_structure = false, double ss_dropout = 0);
  int64_t size() const override { return static_cast<int64_t>(chains_.size()); }
  TrainBatch get(const torch::Tensor& index, at::Generator& gen) const override;
  void check(const FlowNetImpl& net) const override;

 private:
  std::vector<Chain> chains_;
  bool ss_ = false;
  double ss_dropout_ = 0;
};

// dit::initialize_from a protein model file (`dit protein train --init`), with the token
// embedder's columns placed by the token layout [residue features, state, chain neighbours]
// when the network has more residue features (secondary structure) than the file: every new
// column is zero, so the network computes exactly the file's model. Returns the summary.
std::string warm_start_protein_model(TokenDiTImpl& net, const std::string& path);

}  // namespace dit::protein
