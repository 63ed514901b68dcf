#pragma once
// Helpers shared by the pose checks (domains/docking/checks/*.cpp); not public API.
#include <GraphMol/Conformer.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RWMol.h>
#include <dit/check.h>
#include <dit/docking.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace dit::docking::checks {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Bounds: dit::at_most / dit::at_least (dit/check.h); a check that cannot compute its value:
inline CheckValue failed(const std::string& name, double threshold) {
  return CheckValue{name, kNaN, threshold, false};
}

// A sanitised copy of the pose holding only conformer `conformer_id` (as the default
// conformer); null when the pose has no conformer or RDKit cannot sanitise it. The checks
// sanitise their own copy (PoseBusters loads with sanitize=False and sanitises per module).
inline std::unique_ptr<RDKit::RWMol> sanitized_copy(const PoseCheckInput& in) {
  if (in.pose.getNumConformers() == 0) return nullptr;
  auto mol = std::make_unique<RDKit::RWMol>(in.pose);
  try {
    const RDKit::Conformer conf = in.pose.getConformer(in.conformer_id);
    mol->clearConformers();
    auto* c = new RDKit::Conformer(conf);
    c->setId(0);
    mol->addConformer(c, false);
    RDKit::MolOps::sanitizeMol(*mol);
  } catch (const std::exception&) {
    return nullptr;
  }
  return mol;
}

// Positions of the pose's heavy atoms (conformer `conformer_id`) and their atomic numbers.
struct HeavyAtoms {
  std::vector<Vec3> position;
  std::vector<int> atomic_number;
};
inline HeavyAtoms heavy_atoms(const PoseCheckInput& in) {
  HeavyAtoms h;
  const RDKit::Conformer& conf = in.pose.getConformer(in.conformer_id);
  for (const RDKit::Atom* a : in.pose.atoms()) {
    if (a->getAtomicNum() <= 1) continue;
    const RDGeom::Point3D& p = conf.getAtomPos(a->getIdx());
    h.position.push_back({p.x, p.y, p.z});
    h.atomic_number.push_back(a->getAtomicNum());
  }
  return h;
}

inline double distance(const Vec3& a, const Vec3& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

// PoseBusters' split of the receptor (posebusters/tools/protein.py, get_atom_type_mask):
// protein = ATOM records; inorganic cofactors = ions of these elements or these residues;
// organic cofactors = the other HETATM records. Waters never reach us (read_receptor drops them).
enum class ReceptorPart { Protein, OrganicCofactor, InorganicCofactor };
inline ReceptorPart receptor_part(const ReceptorAtom& a) {
  static const int kInorganicElements[] = {3, 4, 11, 12, 17, 19, 20, 25, 26, 27, 28, 29, 30, 35, 37, 42, 48};
  static const char* kInorganicResidues[] = {"FES", "MOS", "PO3", "PO4", "PPK", "SO3", "SO4", "VO4"};
  for (int z : kInorganicElements)
    if (a.atomic_number == z) return ReceptorPart::InorganicCofactor;
  if (!a.hetero) return ReceptorPart::Protein;
  for (const char* r : kInorganicResidues)
    if (a.residue == r) return ReceptorPart::InorganicCofactor;
  return ReceptorPart::OrganicCofactor;
}

}  // namespace dit::docking::checks
