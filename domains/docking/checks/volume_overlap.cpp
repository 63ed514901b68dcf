// Volume overlap: the share of the ligand's volume that lies inside the protein.
//
// PoseBusters `dock` config (posebusters/config/dock.yml, module volume_overlap;
// posebusters/modules/volume_overlap.py): heavy atoms only, spheres of vdW radius (RDKit's
// periodic table) x vdw_scale 0.8; the overlap is ShapeTverskyIndex(ligand, protein, alpha=1,
// beta=0) = V(ligand & protein) / V(ligand); passes at <= clash_cutoff 0.075.
//   volume_overlap_protein              against the ATOM records;
//   volume_overlap_organic_cofactors    against organic HETATM cofactors (vdw_scale 0.8), only
//                                       when the receptor has some;
//   volume_overlap_inorganic_cofactors  against ions / inorganic residues (vdw_scale 0.5), only
//                                       when the receptor has some.
// RDKit's ShapeTverskyIndex encodes both shapes on a 0.5 A grid with fuzzy layers; we count
// voxels of a 0.2 A grid over the ligand (exact up to the grid), which is the same ratio.
#include <GraphMol/PeriodicTable.h>

#include <algorithm>
#include <cstdint>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

constexpr double kMaxOverlap = 0.075;        // dock.yml: clash_cutoff
constexpr double kVdwScale = 0.8;            // dock.yml: vdw_scale (protein, organic cofactors)
constexpr double kInorganicVdwScale = 0.5;   // dock.yml: vdw_scale (inorganic cofactors)
constexpr double kSpacing = 0.2;             // grid spacing (A)

struct Sphere {
  Vec3 c;
  double r;
};

// V(ligand & other) / V(ligand) on a grid over the ligand's spheres.
double overlap_fraction(const std::vector<Sphere>& ligand, const std::vector<Sphere>& other) {
  if (ligand.empty()) return kNaN;
  Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (const Sphere& s : ligand)
    for (int k = 0; k < 3; ++k) {
      lo[k] = std::min(lo[k], s.c[k] - s.r);
      hi[k] = std::max(hi[k], s.c[k] + s.r);
    }
  int n[3];
  for (int k = 0; k < 3; ++k) n[k] = static_cast<int>(std::ceil((hi[k] - lo[k]) / kSpacing)) + 1;
  const size_t total = static_cast<size_t>(n[0]) * n[1] * n[2];
  std::vector<uint8_t> mask(total, 0);  // bit 1: ligand, bit 2: other
  auto paint = [&](const Sphere& s, uint8_t bit) {
    int a[3], b[3];
    for (int k = 0; k < 3; ++k) {
      a[k] = std::max(0, static_cast<int>(std::floor((s.c[k] - s.r - lo[k]) / kSpacing)));
      b[k] = std::min(n[k] - 1, static_cast<int>(std::ceil((s.c[k] + s.r - lo[k]) / kSpacing)));
      if (a[k] > b[k]) return;
    }
    const double r2 = s.r * s.r;
    for (int x = a[0]; x <= b[0]; ++x) {
      const double dx = lo[0] + x * kSpacing - s.c[0];
      for (int y = a[1]; y <= b[1]; ++y) {
        const double dy = lo[1] + y * kSpacing - s.c[1];
        for (int z = a[2]; z <= b[2]; ++z) {
          const double dz = lo[2] + z * kSpacing - s.c[2];
          if (dx * dx + dy * dy + dz * dz <= r2) mask[(static_cast<size_t>(x) * n[1] + y) * n[2] + z] |= bit;
        }
      }
    }
  };
  for (const Sphere& s : ligand) paint(s, 1);
  for (const Sphere& s : other) paint(s, 2);
  size_t in_ligand = 0, in_both = 0;
  for (uint8_t m : mask) {
    in_ligand += (m & 1);
    in_both += (m == 3);
  }
  return in_ligand == 0 ? kNaN : static_cast<double>(in_both) / static_cast<double>(in_ligand);
}

std::vector<CheckValue> volume_overlap(const PoseCheckInput& in) {
  const auto* table = RDKit::PeriodicTable::getTable();
  const HeavyAtoms lig = heavy_atoms(in);
  std::vector<Sphere> ligand, protein, organic, inorganic;
  Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (size_t i = 0; i < lig.position.size(); ++i) {
    ligand.push_back({lig.position[i], kVdwScale * table->getRvdw(lig.atomic_number[i])});
    for (int k = 0; k < 3; ++k) {
      lo[k] = std::min(lo[k], lig.position[i][k]);
      hi[k] = std::max(hi[k], lig.position[i][k]);
    }
  }
  // Ligand spheres with inorganic-cofactor scaling (both sides use the module's vdw_scale).
  std::vector<Sphere> ligand_inorganic;
  for (size_t i = 0; i < lig.position.size(); ++i)
    ligand_inorganic.push_back({lig.position[i], kInorganicVdwScale * table->getRvdw(lig.atomic_number[i])});

  bool has_organic = false, has_inorganic = false;
  for (const ReceptorAtom& a : in.receptor->atoms) {
    if (a.atomic_number <= 1) continue;
    const ReceptorPart part = receptor_part(a);
    has_organic |= part == ReceptorPart::OrganicCofactor;
    has_inorganic |= part == ReceptorPart::InorganicCofactor;
    // Only atoms that can reach the ligand's box matter.
    bool near = true;
    for (int k = 0; k < 3; ++k) near &= a.position[k] > lo[k] - 6 && a.position[k] < hi[k] + 6;
    if (!near) continue;
    const double r = table->getRvdw(a.atomic_number);
    switch (part) {
      case ReceptorPart::Protein: protein.push_back({a.position, kVdwScale * r}); break;
      case ReceptorPart::OrganicCofactor: organic.push_back({a.position, kVdwScale * r}); break;
      case ReceptorPart::InorganicCofactor: inorganic.push_back({a.position, kInorganicVdwScale * r}); break;
    }
  }
  std::vector<CheckValue> out = {at_most("volume_overlap_protein", overlap_fraction(ligand, protein), kMaxOverlap)};
  if (has_organic)
    out.push_back(at_most("volume_overlap_organic_cofactors", overlap_fraction(ligand, organic), kMaxOverlap));
  if (has_inorganic)
    out.push_back(at_most("volume_overlap_inorganic_cofactors", overlap_fraction(ligand_inorganic, inorganic),
                           kMaxOverlap));
  return out;
}

const bool registered_volume_overlap = register_pose_check(
    "volume_overlap",
    "share of the ligand's volume (0.8 x vdW spheres) inside the protein <= 7.5% (PoseBusters dock)",
    volume_overlap, /*needs_receptor=*/true);

}  // namespace
}  // namespace dit::docking::checks
