#pragma once
// Internal to libdit_crystal: the token layout of the crystal DiT (the core's TokenDiT).
//   token 0        lattice lengths: (ln(a / N^(1/3)), ln b', ln c') standardised
//   token 1        lattice angles: (alpha, beta, gamma) standardised
//   tokens 2..N+1  the atoms: fractional coordinates on the circle [-0.5, 0.5) (periodic)
// Token features: two lattice flags, the element one-hot (Z = 1..94) and three element
// properties (Pauling electronegativity / 4, covalent radius / 2 A, period / 7), so that rare
// elements borrow from similar ones. Condition vector: N / 20 and ln(N) / 3. Labels: the space
// group (1..230 as 0..229; the null class 230 = any), dropped at random in training so that one
// model samples with and without it.
#include <dit/crystal.h>

namespace dit::crystal {

constexpr int64_t kLatticeTokens = 2;
constexpr int64_t kTokenFeatures = 2 + kMaxZ + 3;
constexpr int64_t kCondFeatures = 2;
constexpr int64_t kSpaceGroups = 230;
constexpr int64_t kPeriodicFrequencies = 4;

// [kTokenFeatures] of an atom of element z; of the lattice tokens (0: lengths, 1: angles).
torch::Tensor atom_features(int z);
torch::Tensor lattice_features(int which);
torch::Tensor atoms_condition(int64_t atoms);
// The space-group label (0..229), or the null class kSpaceGroups for 0.
int64_t spacegroup_label(int spacegroup);

// Cell parameters <-> the two lattice tokens' six numbers (standardised by `scaling`).
std::array<double, 6> encode_lattice(const std::array<double, 6>& cell, int64_t atoms, const LatticeScaling& scaling);
std::array<double, 6> decode_lattice(const std::array<double, 6>& state, int64_t atoms, const LatticeScaling& scaling);
// The unstandardised six numbers (ln a', ln b', ln c', alpha, beta, gamma) of a cell.
std::array<double, 6> lattice_numbers(const std::array<double, 6>& cell, int64_t atoms);

// One request's inputs: features [T, F], mask [T], cond [K] padded to T tokens.
void fill_inputs(const Composition& composition, int spacegroup, int64_t padded, FlowInputs& in, int64_t row);
// The atoms of a composition in token order (by Z, then count).
std::vector<int> atom_numbers(const Composition& composition);

}  // namespace dit::crystal
