// Distance to the receptor: the ligand neither clashes with the protein (or its cofactors)
// nor floats away from it.
//
// PoseBusters `dock` config (posebusters/config/dock.yml, module intermolecular_distance;
// posebusters/modules/intermolecular_distance.py), heavy atoms only (ignore_types: hydrogens),
// radii from RDKit's periodic table:
//   min_distance_to_protein_ratio  min over ligand-protein pairs of d / (r_vdw,lig + r_vdw,prot)
//                                  (radius_type vdw, radius_scale 1.0); passes at >= clash_cutoff
//                                  0.75.
//   distance_to_protein            the smallest ligand-protein distance in A; passes at
//                                  <= max_distance 5.0 ("Protein-ligand maximum distance").
//   min_distance_to_cofactors_ratio  only when the receptor has HETATM cofactors: the same ratio
//                                  against them, with vdW radii for organic cofactors and covalent
//                                  radii for inorganic ones (ions, SO4, PO4, ...: dock.yml's
//                                  "Distance to inorganic cofactors" uses radius_type covalent);
//                                  passes at >= 0.75.
// "protein" is the ATOM records (PoseBusters ignores organic and inorganic cofactors there).
#include <GraphMol/PeriodicTable.h>

#include <algorithm>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

constexpr double kClashCutoff = 0.75;  // dock.yml: clash_cutoff
constexpr double kMaxDistance = 5.0;   // dock.yml: max_distance

std::vector<CheckValue> protein_distance(const PoseCheckInput& in) {
  const auto* table = RDKit::PeriodicTable::getTable();
  const HeavyAtoms lig = heavy_atoms(in);
  double min_ratio = std::numeric_limits<double>::infinity();
  double min_distance = std::numeric_limits<double>::infinity();
  double min_cofactor_ratio = std::numeric_limits<double>::infinity();
  bool has_protein = false, has_cofactors = false;
  for (const ReceptorAtom& a : in.receptor->atoms) {
    if (a.atomic_number <= 1) continue;
    const ReceptorPart part = receptor_part(a);
    const double r = part == ReceptorPart::InorganicCofactor ? table->getRcovalent(a.atomic_number)
                                                             : table->getRvdw(a.atomic_number);
    (part == ReceptorPart::Protein ? has_protein : has_cofactors) = true;
    for (size_t i = 0; i < lig.position.size(); ++i) {
      const double d = distance(lig.position[i], a.position);
      const double r_lig = part == ReceptorPart::InorganicCofactor ? table->getRcovalent(lig.atomic_number[i])
                                                                   : table->getRvdw(lig.atomic_number[i]);
      const double ratio = d / (r_lig + r);
      if (part == ReceptorPart::Protein) {
        min_ratio = std::min(min_ratio, ratio);
        min_distance = std::min(min_distance, d);
      } else {
        min_cofactor_ratio = std::min(min_cofactor_ratio, ratio);
      }
    }
  }
  if (lig.position.empty() || !has_protein) {
    // Nothing to measure: no heavy ligand atom or no protein atom.
    min_ratio = min_distance = kNaN;
  }
  std::vector<CheckValue> out = {at_least("min_distance_to_protein_ratio", min_ratio, kClashCutoff),
                                 at_most("distance_to_protein", min_distance, kMaxDistance)};
  if (has_cofactors && !lig.position.empty())
    out.push_back(at_least("min_distance_to_cofactors_ratio", min_cofactor_ratio, kClashCutoff));
  return out;
}

const bool registered_protein_distance = register_pose_check(
    "protein_distance",
    "heavy-atom distance to the protein >= 0.75 x sum of vdW radii and <= 5 A (PoseBusters dock)",
    protein_distance, /*needs_receptor=*/true);

}  // namespace
}  // namespace dit::docking::checks
