#pragma once
// Internal to libdit_protein: generated backbones into H5MD (the `backbone` particle group:
// N, CA, C, O, CB per residue, atom_count = 5 x length) and PDB files; shared by
// `dit protein sample` and the batch domain.
#include <dit/h5md.h>
#include <dit/protein.h>

namespace dit::protein {

constexpr int64_t kAtomsPerResidue = 5;  // N, CA, C, O, CB
// The particle group of backbones (capacity for the longest chain of a file).
h5md::ParticleGroupSpec backbone_group(int64_t max_length);
// Appends the samples' positions and species, their observables (length, each check's value,
// checks/valid, helix/strand fractions) and the per-sample records (/samples/valid: finite and
// passing every check). `seeds` [n] uint64-as-int64.
void append_backbones(h5md::File& file, int64_t max_length, const std::vector<Generated<Backbone>>& samples,
                      const torch::Tensor& seeds);

}  // namespace dit::protein
