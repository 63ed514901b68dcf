// Interatomic distances over periodic images (the structural validity of DiffCSP / CDVAE):
//   min_distance          the shortest distance between two atoms (or an atom and its own image),
//                         >= 0.5 A (Xie et al. 2022, CDVAE; Jiao et al. 2023, DiffCSP)
//   min_distance_ratio    the smallest d_ij / (r_i + r_j) with r the covalent radii (Cordero et
//                         al. 2008, through gemmi) >= kMinRatio: element-pair aware, so that two
//                         heavy atoms 0.6 A apart fail although they pass the 0.5 A bound.
// kMinRatio was set on the training crystals (docs/crystal.md: 99.x% of them pass).
#include "check_util.h"

#include <limits>

namespace dit::crystal::checks {
namespace {

constexpr double kMinDistance = 0.5;
constexpr double kMinRatio = 0.5;

std::vector<CheckValue> distances(const Crystal& c) {
  if (!usable(c)) return {failed("min_distance", kMinDistance), failed("min_distance_ratio", kMinRatio)};
  double dmin = std::numeric_limits<double>::infinity(), rmin = dmin;
  for (size_t i = 0; i < c.size(); ++i)
    for (size_t j = i; j < c.size(); ++j) {
      const double d = periodic_distance(c, i, j);
      dmin = std::min(dmin, d);
      const double r = element(c.numbers[i]).covalent_radius + element(c.numbers[j]).covalent_radius;
      rmin = std::min(rmin, d / r);
    }
  return {at_least("min_distance", dmin, kMinDistance), at_least("min_distance_ratio", rmin, kMinRatio)};
}

const bool registered_distances = register_check(
    "distances", "shortest interatomic distance over periodic images >= 0.5 A, and >= 0.5 x the sum of covalent radii",
    distances);

}  // namespace
}  // namespace dit::crystal::checks
