// Radius of gyration of the CA atoms against the length law of compact real chains,
// Rg = 2.2 N^0.38 A (Skolnick, Kolinski & Ortiz 1997, J. Mol. Biol. 265:217).
//   rg_ratio_upper   Rg / (2.2 N^0.38) <= kMaxRatio (not too extended)
//   rg_ratio_lower   Rg / (2.2 N^0.38) >= kMinRatio (not collapsed)
// The bounds were calibrated on 200 single chains of promod3's structure_db (50..300 residues)
// so that about 95% pass (see scripts/protein/make-test-fixtures.py --calibrate and the
// DISABLED_ calibration test); single chains cut from complexes are often elongated.
#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kMaxRatio = 1.6;
constexpr double kMinRatio = 0.8;

std::vector<CheckValue> radius_of_gyration(const Backbone& b) {
  if (!usable(b, 3)) return {failed("rg_ratio_upper", kMaxRatio), failed("rg_ratio_lower", kMinRatio)};
  const size_t n = b.size();
  Vec3 centre{0, 0, 0};
  for (const Vec3& p : b.ca)
    for (int k = 0; k < 3; ++k) centre[k] += p[k] / static_cast<double>(n);
  double sum = 0;
  for (const Vec3& p : b.ca) sum += dot(sub(p, centre), sub(p, centre));
  const double rg = std::sqrt(sum / static_cast<double>(n));
  const double ratio = rg / (kRgPrefactor * std::pow(static_cast<double>(n), kRgExponent));
  return {at_most("rg_ratio_upper", ratio, kMaxRatio), at_least("rg_ratio_lower", ratio, kMinRatio)};
}

const bool registered_radius_of_gyration = register_check(
    "radius_of_gyration", "CA radius of gyration / (2.2 N^0.38) within [0.8, 1.6] (Skolnick et al. 1997)",
    radius_of_gyration);

}  // namespace
}  // namespace dit::protein::checks
