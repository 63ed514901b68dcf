// Chemistry: the pose passes RDKit's sanitisation and all its atoms form one fragment.
// PoseBusters `dock` config (posebusters/config/dock.yml, modules rdkit_sanity and
// atoms_connected; posebusters/modules/sanity.py): passes_rdkit_sanity_checks is
// DetectChemistryProblems(SANITIZE_ALL) finding nothing; all_atoms_connected is
// len(GetMolFrags(mol)) <= 1.
#include <GraphMol/MolOps.h>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

std::vector<CheckValue> chemistry(const PoseCheckInput& in) {
  // sanitization: value 1 when RDKit finds no chemistry problem (valence, kekulisation,
  // aromaticity, ...), else 0; passes when value >= 1.
  size_t problems = 0;
  {
    RDKit::RWMol copy(in.pose);
    problems = RDKit::MolOps::detectChemistryProblems(copy).size();
  }
  // all_atoms_connected: value = number of fragments of the molecular graph; passes at <= 1.
  std::vector<int> mapping;
  const unsigned fragments = in.pose.getNumAtoms() == 0 ? 0 : RDKit::MolOps::getMolFrags(in.pose, mapping);
  return {at_least("sanitization", problems == 0 ? 1.0 : 0.0, 1.0),
          at_most("all_atoms_connected", static_cast<double>(fragments), 1.0)};
}

const bool registered_chemistry = register_pose_check(
    "chemistry", "RDKit sanitisation passes and all atoms are in one fragment (PoseBusters)", chemistry);

}  // namespace
}  // namespace dit::docking::checks
