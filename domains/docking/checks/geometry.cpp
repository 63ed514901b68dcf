// Geometry: bond lengths, bond angles (1-3 distances) and internal steric clashes measured
// against RDKit's distance-geometry bounds.
//
// PoseBusters `dock` config (posebusters/config/dock.yml, module distance_geometry;
// posebusters/modules/distance_geometry.py): bounds from GetMoleculeBoundsMatrix(mol,
// set15bounds=True, scaleVDW=True, doTriangleSmoothing=True, useMacrocycle14config=False) on the
// molecule as given (with its hydrogens); pairs involving a hydrogen are ignored
// (ignore_hydrogens: True). With d the distance and [lb, ub] the bounds:
//   bond_lengths           bonded pairs; relative error (d - lb) / lb below, (d - ub) / ub above,
//                          0 inside. threshold_bad_bond_length: 0.25.
//   bond_angles            1-3 pairs (two bonds sharing one atom, the ends not bonded); the same
//                          relative error, absolute. threshold_bad_angle: 0.25.
//   internal_steric_clash  all other pairs; relative overlap (lb - d) / lb when d < lb.
//                          threshold_clash: 0.3 (a clash is d < 0.7 lb).
// Each value is the worst relative deviation over its pairs (0 with no pairs) and passes at
// <= its threshold, which is PoseBusters' "every pair within bounds".
#include <DistGeom/BoundsMatrix.h>
#include <DistGeom/TriangleSmooth.h>
#include <GraphMol/DistGeomHelpers/BoundsMatrixBuilder.h>

#include <algorithm>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

constexpr double kBondTolerance = 0.25;   // dock.yml: threshold_bad_bond_length
constexpr double kAngleTolerance = 0.25;  // dock.yml: threshold_bad_angle
constexpr double kClashTolerance = 0.3;   // dock.yml: threshold_clash

// Out-of-bounds relative error (posebusters/tools/stats.py: bpe).
double bound_error(double d, double lb, double ub) {
  if (d < lb) return (d - lb) / lb;
  if (d > ub) return (d - ub) / ub;
  return 0;
}

std::vector<CheckValue> geometry(const PoseCheckInput& in) {
  auto mol = sanitized_copy(in);
  if (!mol)
    return {failed("bond_lengths", kBondTolerance), failed("bond_angles", kAngleTolerance),
            failed("internal_steric_clash", kClashTolerance)};
  const unsigned n = mol->getNumAtoms();
  double worst_bond = 0, worst_angle = 0, worst_clash = 0;
  if (n > 1) {
    DistGeom::BoundsMatPtr bounds(new DistGeom::BoundsMatrix(n));
    RDKit::DGeomHelpers::initBoundsMat(bounds);
    RDKit::DGeomHelpers::setTopolBounds(*mol, bounds, /*set15bounds=*/true, /*scaleVDW=*/true,
                                        /*useMacrocycle14config=*/false);
    DistGeom::triangleSmoothBounds(bounds);

    // Pair kinds: 1 bonded, 2 the ends of an angle (not bonded), 0 anything else.
    std::vector<char> kind(static_cast<size_t>(n) * n, 0);
    auto at = [n](unsigned i, unsigned j) { return static_cast<size_t>(i) * n + j; };
    for (const RDKit::Bond* b : mol->bonds()) {
      const unsigned i = b->getBeginAtomIdx(), j = b->getEndAtomIdx();
      kind[at(i, j)] = kind[at(j, i)] = 1;
    }
    for (const RDKit::Atom* center : mol->atoms()) {
      std::vector<unsigned> nbrs;
      for (const RDKit::Atom* nb : mol->atomNeighbors(center)) nbrs.push_back(nb->getIdx());
      for (size_t p = 0; p < nbrs.size(); ++p)
        for (size_t q = p + 1; q < nbrs.size(); ++q) {
          const unsigned i = nbrs[p], j = nbrs[q];
          if (kind[at(i, j)] == 0) kind[at(i, j)] = kind[at(j, i)] = 2;
        }
    }

    const RDKit::Conformer& conf = mol->getConformer();
    for (unsigned i = 0; i < n; ++i) {
      if (mol->getAtomWithIdx(i)->getAtomicNum() == 1) continue;
      for (unsigned j = i + 1; j < n; ++j) {
        if (mol->getAtomWithIdx(j)->getAtomicNum() == 1) continue;
        const double d = (conf.getAtomPos(i) - conf.getAtomPos(j)).length();
        const double lb = bounds->getLowerBound(i, j), ub = bounds->getUpperBound(i, j);
        switch (kind[at(i, j)]) {
          case 1: worst_bond = std::max(worst_bond, std::abs(bound_error(d, lb, ub))); break;
          case 2: worst_angle = std::max(worst_angle, std::abs(bound_error(d, lb, ub))); break;
          default:
            if (lb > 0 && d < lb) worst_clash = std::max(worst_clash, (lb - d) / lb);
        }
      }
    }
  }
  return {at_most("bond_lengths", worst_bond, kBondTolerance),
          at_most("bond_angles", worst_angle, kAngleTolerance),
          at_most("internal_steric_clash", worst_clash, kClashTolerance)};
}

const bool registered_geometry = register_pose_check(
    "geometry",
    "bond lengths, bond angles and internal clashes within RDKit distance-geometry bounds "
    "(PoseBusters dock: 25%, 25%, 30%)",
    geometry);

}  // namespace
}  // namespace dit::docking::checks
