// Peptide planarity: omega = dihedral(CA_i, C_i, N_i+1, CA_i+1) near 180 (trans) or 0 (cis).
// A peptide is twisted when omega deviates more than 30 degrees from planarity: MolProbity's
// cutoff (Williams et al. 2018, Protein Sci. 27:293, "cis and twisted peptides").
//   omega_twisted_fraction   fraction of twisted peptides, <= 0.015 (tuned)
//   omega_max_deviation      largest deviation from the nearer of 0 / 180, <= 60 degrees (tuned)
// Tuned on 200 real chains of promod3's structure_db: 9% have a twisted peptide, ~1% more
// than 1.1% of them; ~2% a peptide more than 60 degrees from planar.
#include "check_util.h"
#include "outliers.h"

namespace dit::protein::checks {
namespace {

constexpr double kTwisted = 30.0;              // degrees, MolProbity twisted-peptide cutoff
constexpr double kMaxTwistedFraction = 0.015;  // tuned on real chains
constexpr double kMaxOmegaDeviation = 60.0;    // degrees, tuned on real chains

// Deviation of each peptide's omega from the nearer of 0 and 180 degrees (NaN stays NaN).
std::vector<double> omega_deviations(const Backbone& b) {
  std::vector<double> dev;
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    const double omega = std::fabs(dihedral(b.ca[i], b.c[i], b.n[i + 1], b.ca[i + 1]));  // [0, 180]
    dev.push_back(std::fmin(omega, 180.0 - omega));
  }
  return dev;
}

std::vector<CheckValue> peptide_planarity(const Backbone& b) {
  if (!usable(b, 2))
    return {failed("omega_twisted_fraction", kMaxTwistedFraction), failed("omega_max_deviation", kMaxOmegaDeviation)};
  double worst = 0;
  size_t twisted = 0;
  for (double dev : omega_deviations(b)) {
    if (!(dev <= worst)) worst = dev;
    if (!(dev <= kTwisted)) ++twisted;
  }
  return {at_most("omega_twisted_fraction", static_cast<double>(twisted) / static_cast<double>(b.size() - 1),
                  kMaxTwistedFraction),
          at_most("omega_max_deviation", worst, kMaxOmegaDeviation)};
}

const bool registered_peptide_planarity = register_check(
    "peptide_planarity", "omega within 30 deg of 180 or 0 for >= 98.5% of peptides, none beyond 60 deg",
    peptide_planarity);

}  // namespace

std::vector<size_t> twisted_peptides(const Backbone& b) {
  std::vector<size_t> out;
  if (!usable(b, 2)) return out;
  const auto dev = omega_deviations(b);
  for (size_t i = 0; i < dev.size(); ++i)
    if (!(dev[i] <= kTwisted)) out.push_back(i);
  return out;
}

}  // namespace dit::protein::checks
