#pragma once
// The residues and peptides that two backbone checks count against a chain, for code that acts
// on them (the relaxation's outlier polish, domains/protein/domain.cpp); one definition each,
// beside its check (ramachandran.cpp, peptide_planarity.cpp). Not public API.
#include <cstddef>
#include <vector>

#include "domains/protein/backbone.h"

namespace dit::protein::checks {

// Whether (phi, psi), degrees in [-180, 180], lies in the Ramachandran check's allowed regions.
bool ramachandran_allowed(double phi, double psi);

// Non-glycine residues with both neighbours whose (phi, psi) (degrees) lie outside those
// regions; empty for a backbone the check cannot use.
struct RamaOutlier {
  size_t residue = 0;
  double phi = 0, psi = 0;
};
std::vector<RamaOutlier> ramachandran_outliers(const Backbone& b);

// Peptides i (joining residue i to i + 1) that the planarity check counts as twisted (omega more
// than 30 degrees from 180 and from 0); empty for a backbone the check cannot use.
std::vector<size_t> twisted_peptides(const Backbone& b);

}  // namespace dit::protein::checks
