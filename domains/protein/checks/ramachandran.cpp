// Ramachandran: fraction of residues whose (phi, psi) lie in a coarse allowed region.
// phi = C_{i-1} N CA C, psi = N CA C N_{i+1}; the first and last residue and glycines are not
// counted (glycine's plot is its own). Allowed (degrees), a box approximation of the
// general-case "allowed" contour of Lovell et al. 2003 (Proteins 50:437), which holds ~99.8% of
// non-glycine residues of good structures:
//   right-handed region   phi in [-180, -25], psi in [-75, 180]   (alpha, bridge, beta, PPII)
//   beta wrap             phi in [-180, -45], psi in [-180, -150]
//   left-handed helix     phi in [25, 110],   psi in [-40, 100]
// Prolines lie inside the first box (phi ~ -65).
//   rama_allowed_fraction   >= kMinAllowedFraction (0.95, calibrated: see radius_of_gyration.cpp)
#include "check_util.h"
#include "outliers.h"

namespace dit::protein::checks {
namespace {

constexpr double kMinAllowedFraction = 0.95;

struct Box {
  double phi_lo, phi_hi, psi_lo, psi_hi;
};
constexpr Box kAllowed[] = {{-180, -25, -75, 180}, {-180, -45, -180, -150}, {25, 110, -40, 100}};

bool allowed(double phi, double psi) {
  for (const Box& b : kAllowed)
    if (phi >= b.phi_lo && phi <= b.phi_hi && psi >= b.psi_lo && psi <= b.psi_hi) return true;
  return false;
}

// Counted residues (non-glycine, both neighbours present) and those outside the allowed boxes.
size_t counted_residues(const Backbone& b) {
  size_t counted = 0;
  for (size_t i = 1; i + 1 < b.size(); ++i) counted += b.sequence[i] == 'G' ? 0 : 1;
  return counted;
}

std::vector<CheckValue> ramachandran(const Backbone& b) {
  if (!usable(b, 3)) return {failed("rama_allowed_fraction", kMinAllowedFraction)};
  const size_t counted = counted_residues(b);
  if (counted == 0) return {failed("rama_allowed_fraction", kMinAllowedFraction)};
  const size_t inside = counted - ramachandran_outliers(b).size();
  return {at_least("rama_allowed_fraction", static_cast<double>(inside) / static_cast<double>(counted),
                   kMinAllowedFraction)};
}

const bool registered_ramachandran = register_check(
    "ramachandran", "fraction of non-Gly residues in coarse allowed phi/psi regions (Lovell et al. 2003 boxes)",
    ramachandran);

}  // namespace

bool ramachandran_allowed(double phi, double psi) { return allowed(phi, psi); }

std::vector<RamaOutlier> ramachandran_outliers(const Backbone& b) {
  std::vector<RamaOutlier> out;
  if (!usable(b, 3)) return out;
  for (size_t i = 1; i + 1 < b.size(); ++i) {
    if (b.sequence[i] == 'G') continue;
    const double phi = dihedral(b.c[i - 1], b.n[i], b.ca[i], b.c[i]);
    const double psi = dihedral(b.n[i], b.ca[i], b.c[i], b.n[i + 1]);
    if (!allowed(phi, psi)) out.push_back({i, phi, psi});
  }
  return out;
}

}  // namespace dit::protein::checks
