#pragma once
// Internal to libdit_docking: OpenMM refinement of docked poses. The ligand (every atom,
// hydrogens too) is minimised in the field of the rigid pocket:
//
//   ligand     MMFF94 from RDKit as OpenMM forces (mmff_openmm.h): bonds, angles,
//              stretch-bend, out-of-plane, torsions, 14-7 vdW and Coulomb; its partial charges
//   pocket     receptor heavy atoms near the box, fixed (mass 0), with united-atom Amber ff14SB
//              charges and Lennard-Jones parameters (the hydrogens' charges folded into their
//              heavy atom), generated at build time from the force-field XML that Debian's
//              python3-simtk ships (scripts/docking/make-pocket-params.py); atoms the templates
//              do not cover get element defaults (counted in PoseRefiner::fallback_atoms)
//   between    Lennard-Jones (Lorentz-Berthelot; ligand atoms with UFF's vdW distance and depth,
//              polar hydrogens with Amber's small H radius) and Coulomb with a distance-dependent
//              dielectric eps(r) = dielectric * r[A], cut off at `cutoff` with a switch over
//              the last 1 A; only ligand-pocket pairs (an interaction group)
//   restraint  0.5 k |x - x0|^2 on each ligand heavy atom toward the pose being refined
//
// Then LocalEnergyMinimizer. Reported (kcal/mol): the interaction energy at the refined pose,
// and the ligand strain = its MMFF energy there minus that of the nearest local minimum of the
// free ligand (a second minimisation from the refined pose with the pocket and the restraint
// switched off).
#include <dit/docking.h>

#include <memory>
#include <string>
#include <vector>

namespace dit::docking {

struct RefineOptions {
  double restraint = 5.0;       // kcal/mol/A^2 on each ligand heavy atom (0: none)
  double dielectric = 4.0;      // eps(r) = dielectric * r, r in A
  double cutoff = 10.0;         // A, ligand-pocket interactions
  double tolerance = 30.0;      // kJ/mol/nm: LocalEnergyMinimizer's RMS-force tolerance (30: 3x
                                // faster than 10 on a 71-atom ligand, poses within ~0.1 A)
  int max_iterations = 200;     // per minimisation (0: until converged)
  std::string platform = "CPU"; // "CPU" (Reference when the plugin cannot be loaded) or "Reference"
  int threads = 1;              // CPU platform threads
};

struct RefinedPose {
  std::vector<Vec3> coordinates;  // every ligand atom, refined
  double interaction = 0;         // kcal/mol, ligand-pocket Lennard-Jones + Coulomb
  double strain = 0;              // kcal/mol, MMFF energy above the free ligand's nearest minimum
  double intra = 0;               // kcal/mol, MMFF energy of the refined pose
  double shift = 0;               // heavy-atom RMSD, refined vs input (A)
  double energy() const { return interaction + strain; }
};

class PoseRefiner {
 public:
  // `pocket`: the receptor atoms near the box (box_pocket); hydrogens in it are skipped.
  // `ligand`: the prepared ligand (explicit hydrogens). Throws dit::Error naming `source`
  // when MMFF94 cannot type the ligand or OpenMM fails.
  PoseRefiner(const Receptor& pocket, const RDKit::ROMol& ligand, const RefineOptions& options,
              const std::string& source);
  ~PoseRefiner();
  PoseRefiner(const PoseRefiner&) = delete;
  PoseRefiner& operator=(const PoseRefiner&) = delete;

  // Refines one pose (every ligand atom, in atom order).
  RefinedPose refine(const std::vector<Vec3>& coordinates);

  const std::string& platform() const;
  int pocket_atoms() const;    // fixed particles
  int fallback_atoms() const;  // pocket atoms parameterised by element defaults (no template)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Number of residue-template atoms in the generated pocket table (a test checks it against the XML).
int pocket_table_size();
// The united-atom charge, sigma (nm) and epsilon (kJ/mol) of (residue, atom) in the table; false
// when the table has no such atom.
bool pocket_table_lookup(const std::string& residue, const std::string& atom, double& charge,
                         double& sigma, double& epsilon);

}  // namespace dit::docking
