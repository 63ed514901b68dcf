// Consecutive CA-CA distances: 3.80 +/- 0.10 A for trans peptides, 2.90 +/- 0.10 A for cis
// peptides (omega within 90 deg of 0).
// 3.80 A is the CA-CA distance of a planar trans peptide with Engh & Huber (1991) geometry, 2.90 A
// that of a cis peptide; the +/- 0.10 A window is issue 17's bound.
//   ca_ca_outlier_fraction   fraction of consecutive pairs outside the window, <= 0.03
//   ca_ca_max_deviation      max |d - ideal| over consecutive pairs, <= 0.35 A
// Both bounds are tuned (not from the literature): over 200 real chains of promod3's
// structure_db (50..300 residues, every chain of a mixed-resolution PDB set), 31% have at
// least one pair outside +/- 0.10 A; <= 3% outliers and no pair beyond 0.35 A keeps ~97%.
#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kIdealCaCaTrans = 3.80;  // A, trans peptide (Engh & Huber 1991 geometry)
constexpr double kIdealCaCaCis = 2.90;    // A, cis peptide
constexpr double kCaCaTolerance = 0.10;   // A, issue 17
constexpr double kMaxCaCaOutlierFraction = 0.03;  // tuned on real chains
constexpr double kMaxDeviation = 0.35;        // A, tuned on real chains

std::vector<CheckValue> ca_ca_distance(const Backbone& b) {
  if (!usable(b, 2))
    return {failed("ca_ca_outlier_fraction", kMaxCaCaOutlierFraction), failed("ca_ca_max_deviation", kMaxDeviation)};
  double worst = 0;
  size_t outside = 0;
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    const double omega = std::fabs(dihedral(b.ca[i], b.c[i], b.n[i + 1], b.ca[i + 1]));
    const double ideal = omega < 90.0 ? kIdealCaCaCis : kIdealCaCaTrans;
    const double dev = std::fabs(distance(b.ca[i], b.ca[i + 1]) - ideal);
    if (!(dev <= worst)) worst = dev;  // NaN propagates
    if (!(dev <= kCaCaTolerance)) ++outside;
  }
  const double fraction = static_cast<double>(outside) / static_cast<double>(b.size() - 1);
  return {at_most("ca_ca_outlier_fraction", fraction, kMaxCaCaOutlierFraction),
          at_most("ca_ca_max_deviation", worst, kMaxDeviation)};
}

const bool registered_ca_ca_distance = register_check(
    "ca_ca_distance", "consecutive CA-CA 3.80 +/- 0.10 A (cis 2.90) for >= 97% of pairs, none off by > 0.35 A",
    ca_ca_distance);

}  // namespace
}  // namespace dit::protein::checks
