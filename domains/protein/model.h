#pragma once
// Internal to libdit_protein: the protein network is the core's TokenDiT (dit/model.h), the one
// block stack of every domain. Residues are its tokens: their features say where a residue sits
// in the chain (sinusoids of the residue index and the relative position), the condition vector
// says how long the chain is, and the generated numbers are the residue's C-alpha position,
// centred, in units of kCoordScale angstrom (a chain of 150 residues spreads about 1 unit per axis).
#include <dit/protein.h>

namespace dit::protein {

constexpr double kCoordScale = 10.0;
constexpr int64_t kFrequencies = 8;                          // sinusoid pairs of the residue index
constexpr int64_t kResidueFeatures = 2 * kFrequencies + 1;   // + relative position i / (L - 1)
constexpr int64_t kCondFeatures = 2;                         // L / 100, log(L / 100)
// Secondary-structure models (ProteinTrainOptions::secondary_structure) append a 3-state
// one-hot per residue (helix H, strand E, loop L); all zero where the state is not given.
constexpr int64_t kSsFeatures = 3;

// [padded, kResidueFeatures (+ kSsFeatures when `with_ss`)]: rows >= length are zero. `ss`: a
// 3-state string of `length` characters from "HEL-?" ('-' is L, '?' not given), or empty (none
// given).
torch::Tensor residue_features(int64_t length, int64_t padded, bool with_ss = false,
                               const std::string& ss = "");
// [kCondFeatures]
torch::Tensor length_condition(int64_t length);
// The domain's metadata (model files and training checkpoints).
Metadata protein_metadata(bool secondary_structure);

}  // namespace dit::protein
