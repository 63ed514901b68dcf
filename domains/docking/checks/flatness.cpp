// Flatness: aromatic rings and C=C double bonds with their substituents lie in a plane, and
// non-aromatic six-membered rings do not.
//
// PoseBusters `dock` config (posebusters/config/dock.yml, modules "Ring flatness", "Double bond
// flatness", "Ring non-flatness"; posebusters/modules/flatness.py): atoms of each SMARTS match,
// distance to their least-squares plane (through the centroid, normal = the singular vector of
// the smallest singular value).
//   aromatic_ring_flatness   [ar5^2]1[ar5^2][ar5^2][ar5^2][ar5^2]1 and the 6-ring analogue;
//                            worst max distance <= threshold_flatness 0.25 A.
//   double_bond_flatness     [C;X3;^2](*)(*)=[C;X3;^2](*)(*); worst max distance <= 0.25 A.
//   non_aromatic_ring_non_flatness  the five non-aromatic 6-ring SMARTS of dock.yml; every ring
//                            needs one atom >= 0.05 A from its plane (check_nonflat); the value
//                            is the smallest such max distance.
// Distances are absolute (PoseBusters takes the max of signed distances, which can only be
// smaller). A value is NaN, passing, when the pose has no such group.
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/Substruct/SubstructMatch.h>

#include <algorithm>
#include <map>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

constexpr double kFlatThreshold = 0.25;    // dock.yml: threshold_flatness (flat systems)
constexpr double kNonFlatThreshold = 0.05; // dock.yml: threshold_flatness (check_nonflat)

const std::vector<std::string> kAromaticRings = {
    "[ar5^2]1[ar5^2][ar5^2][ar5^2][ar5^2]1",
    "[ar6^2]1[ar6^2][ar6^2][ar6^2][ar6^2][ar6^2]1",
};
const std::vector<std::string> kDoubleBonds = {"[C;X3;^2](*)(*)=[C;X3;^2](*)(*)"};
const std::vector<std::string> kNonAromaticRings = {
    "[C,O,S,N;R1]~1[C,O,S,N;R1][C,O,S,N;R1][C,O,S,N;R1][C,O,S,N;R1][C,O,S,N;R1]1",
    "[C;R1]~1[C;R1][C,O,S,N;R1]~[C,O,S,N;R1][C;R1][C;R1]1",
    "[C;R1]~1[C;R1][C;R1]~[C;R1][C,O,S,N;R1][C;R1]1",
    "[C;R1]~1[C;R1][C;R1][C,O,S,N;R1]~[C,O,S,N;R1][C;R1]1",
    "[C;R1]~1[C;R1][C,O,S,N;R1][C;R1]~[C;R1][C;R1]1",
};

// Eigenvector of the smallest eigenvalue of a symmetric 3x3 matrix (cyclic Jacobi rotations).
Vec3 smallest_eigenvector(double a[3][3]) {
  double v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    if (off < 1e-30) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (std::abs(a[p][q]) < 1e-300) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {  // A <- A J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A <- J^T A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {  // V <- V J
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  int m = 0;
  for (int k = 1; k < 3; ++k)
    if (a[k][k] < a[m][m]) m = k;
  return {v[0][m], v[1][m], v[2][m]};
}

// Largest distance of the atoms to their least-squares plane.
double max_distance_to_plane(const RDKit::Conformer& conf, const std::vector<int>& atoms) {
  Vec3 c{0, 0, 0};
  for (int i : atoms) {
    const auto& p = conf.getAtomPos(i);
    c[0] += p.x, c[1] += p.y, c[2] += p.z;
  }
  for (double& x : c) x /= static_cast<double>(atoms.size());
  double cov[3][3] = {};
  std::vector<Vec3> centred;
  for (int i : atoms) {
    const auto& p = conf.getAtomPos(i);
    const Vec3 r{p.x - c[0], p.y - c[1], p.z - c[2]};
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) cov[a][b] += r[a] * r[b];
    centred.push_back(r);
  }
  const Vec3 normal = smallest_eigenvector(cov);
  double worst = 0;
  for (const Vec3& r : centred)
    worst = std::max(worst, std::abs(r[0] * normal[0] + r[1] * normal[1] + r[2] * normal[2]));
  return worst;
}

// Max distance to plane for every match of every pattern.
std::vector<double> plane_distances(const RDKit::ROMol& mol, const std::vector<std::string>& smarts) {
  std::vector<double> out;
  for (const std::string& s : smarts) {
    static thread_local std::map<std::string, std::shared_ptr<RDKit::ROMol>> cache;
    auto& query = cache[s];
    if (!query) query.reset(RDKit::SmartsToMol(s));
    std::vector<RDKit::MatchVectType> matches;
    RDKit::SubstructMatch(mol, *query, matches, /*uniquify=*/true);
    for (const auto& match : matches) {
      std::vector<int> atoms;
      for (const auto& pair : match) atoms.push_back(pair.second);
      out.push_back(max_distance_to_plane(mol.getConformer(), atoms));
    }
  }
  return out;
}

CheckValue flat(const std::string& name, const std::vector<double>& d) {
  if (d.empty()) return CheckValue{name, kNaN, kFlatThreshold, true};
  return at_most(name, *std::max_element(d.begin(), d.end()), kFlatThreshold);
}

std::vector<CheckValue> flatness(const PoseCheckInput& in) {
  auto mol = sanitized_copy(in);
  if (!mol)
    return {failed("aromatic_ring_flatness", kFlatThreshold), failed("double_bond_flatness", kFlatThreshold),
            failed("non_aromatic_ring_non_flatness", kNonFlatThreshold)};
  const auto rings = plane_distances(*mol, kAromaticRings);
  const auto bonds = plane_distances(*mol, kDoubleBonds);
  const auto nonflat = plane_distances(*mol, kNonAromaticRings);
  CheckValue nonflat_value{"non_aromatic_ring_non_flatness", kNaN, kNonFlatThreshold, true};
  if (!nonflat.empty())
    nonflat_value = at_least(nonflat_value.name, *std::min_element(nonflat.begin(), nonflat.end()),
                             kNonFlatThreshold);
  return {flat("aromatic_ring_flatness", rings), flat("double_bond_flatness", bonds), nonflat_value};
}

const bool registered_flatness = register_pose_check(
    "flatness",
    "aromatic rings and C=C double bonds within 0.25 A of their plane, saturated 6-rings not flat "
    "(PoseBusters dock)",
    flatness);

}  // namespace
}  // namespace dit::docking::checks
