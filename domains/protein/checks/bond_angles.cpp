// Backbone bond angles against Engh & Huber (1991), Acta Cryst. A47:392, Table 3 (mean, s.d.):
// N-CA-C 111.2 (2.8), CA-C-N 116.2 (2.0), C-N-CA 121.7 (1.8), CA-C-O 120.1 (2.1),
// O-C-N 122.7 (1.6) degrees. Outlier beyond 4 s.d. (MolProbity, Chen et al. 2010).
//   bond_angle_outlier_fraction   fraction of angles beyond 4 s.d., <= 0.015
//   bond_angle_max_z              largest |deviation| / s.d., <= 12
// Bounds tuned on 200 real chains of promod3's structure_db (mixed resolution): 31% have at
// least one 4-s.d. outlier, ~1% more than 1.5%, ~1-2% an angle beyond 12 s.d.
#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kAngleOutlierSigmas = 4.0;        // MolProbity outlier criterion
constexpr double kMaxAngleOutlierFraction = 0.015; // tuned on real chains
constexpr double kMaxAngleZ = 12.0;                // tuned on real chains
struct AngleType {
  double ideal, sigma;
};
constexpr AngleType kNCaC{111.2, 2.8}, kCaCN{116.2, 2.0}, kCNCa{121.7, 1.8}, kCaCO{120.1, 2.1}, kOCN{122.7, 1.6};

std::vector<CheckValue> bond_angles(const Backbone& b) {
  if (!usable(b, 1))
    return {failed("bond_angle_outlier_fraction", kMaxAngleOutlierFraction), failed("bond_angle_max_z", kMaxAngleZ)};
  double worst = 0;
  size_t count = 0, outliers = 0;
  auto see = [&](const AngleType& t, const Vec3& x, const Vec3& y, const Vec3& z) {
    const double dev = std::fabs(angle(x, y, z) - t.ideal) / t.sigma;
    if (!(dev <= worst)) worst = dev;
    if (!(dev <= kAngleOutlierSigmas)) ++outliers;
    ++count;
  };
  for (size_t i = 0; i < b.size(); ++i) {
    see(kNCaC, b.n[i], b.ca[i], b.c[i]);
    see(kCaCO, b.ca[i], b.c[i], b.o[i]);  // the last residue's too: its O is a carbonyl O
    if (i + 1 < b.size()) {
      see(kCaCN, b.ca[i], b.c[i], b.n[i + 1]);
      see(kCNCa, b.c[i], b.n[i + 1], b.ca[i + 1]);
      see(kOCN, b.o[i], b.c[i], b.n[i + 1]);
    }
  }
  return {at_most("bond_angle_outlier_fraction", static_cast<double>(outliers) / static_cast<double>(count),
                  kMaxAngleOutlierFraction),
          at_most("bond_angle_max_z", worst, kMaxAngleZ)};
}

const bool registered_bond_angles = register_check(
    "bond_angles",
    "N-CA-C, CA-C-N, C-N-CA, CA-C-O, O-C-N vs Engh & Huber (1991): <= 1.5% beyond 4 s.d., none beyond 12 s.d.",
    bond_angles);

}  // namespace
}  // namespace dit::protein::checks
