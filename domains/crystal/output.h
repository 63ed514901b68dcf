#pragma once
// Internal to libdit_crystal: generated crystals into H5MD (write_crystals_h5 and batch jobs).
#include <dit/crystal.h>
#include <dit/h5md.h>

namespace dit::crystal {

// /particles/crystal: `max_atoms` atoms per frame, periodic box (edges: the lattice vectors as rows).
h5md::ParticleGroupSpec crystal_group(int64_t max_atoms);
// One frame per sample (cartesian positions in angstrom, atomic numbers, box edges), the check
// values under /observables/checks/, the space group at 0.1 A and the formula's atom count, and
// the /samples records (valid = finite and passing every check).
void append_crystals(h5md::File& file, int64_t max_atoms, const std::vector<Generated<Crystal>>& samples,
                     const torch::Tensor& seeds);

}  // namespace dit::crystal
