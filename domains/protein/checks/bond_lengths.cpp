// Backbone bond lengths against Engh & Huber (1991), Acta Cryst. A47:392, Table 3
// (mean, s.d.): N-CA 1.458 (0.019), CA-C 1.525 (0.021), C=O 1.231 (0.020),
// C-N (peptide) 1.329 (0.014) A. A bond is an outlier beyond 4 s.d. (MolProbity's outlier
// criterion for bond lengths and angles, Chen et al. 2010, Acta Cryst. D66:12).
//   bond_length_outlier_fraction   fraction of bonds beyond 4 s.d., <= 0.015
//   bond_length_max_z              largest |deviation| / s.d. over all bonds, <= 12
// The two bounds are tuned on 200 real chains of promod3's structure_db (mixed resolution):
// 11% of them have at least one 4-s.d. outlier, 1% more than 1.1% outliers, 1-2% a bond
// beyond 12 s.d.
#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kBondOutlierSigmas = 4.0;        // MolProbity outlier criterion
constexpr double kMaxBondOutlierFraction = 0.015; // tuned on real chains
constexpr double kMaxBondZ = 12.0;                // tuned on real chains
struct BondType {
  double ideal, sigma;
};
constexpr BondType kNCa{1.458, 0.019}, kCaC{1.525, 0.021}, kCO{1.231, 0.020}, kCN{1.329, 0.014};

std::vector<CheckValue> bond_lengths(const Backbone& b) {
  if (!usable(b, 1))
    return {failed("bond_length_outlier_fraction", kMaxBondOutlierFraction), failed("bond_length_max_z", kMaxBondZ)};
  double worst = 0;
  size_t count = 0, outliers = 0;
  auto see = [&](const BondType& t, const Vec3& x, const Vec3& y) {
    const double z = std::fabs(distance(x, y) - t.ideal) / t.sigma;
    if (!(z <= worst)) worst = z;
    if (!(z <= kBondOutlierSigmas)) ++outliers;
    ++count;
  };
  for (size_t i = 0; i < b.size(); ++i) {
    see(kNCa, b.n[i], b.ca[i]);
    see(kCaC, b.ca[i], b.c[i]);
    see(kCO, b.c[i], b.o[i]);
    if (i + 1 < b.size()) see(kCN, b.c[i], b.n[i + 1]);
  }
  return {at_most("bond_length_outlier_fraction", static_cast<double>(outliers) / static_cast<double>(count),
                  kMaxBondOutlierFraction),
          at_most("bond_length_max_z", worst, kMaxBondZ)};
}

const bool registered_bond_lengths = register_check(
    "bond_lengths", "N-CA, CA-C, C=O, C-N vs Engh & Huber (1991): <= 1.5% beyond 4 s.d., none beyond 12 s.d.",
    bond_lengths);

}  // namespace
}  // namespace dit::protein::checks
