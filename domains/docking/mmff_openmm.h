#pragma once
// Internal to libdit_docking: MMFF94 (RDKit's parameters) as OpenMM forces, so that a ligand
// can be minimised by OpenMM in the field of a pocket. Units: OpenMM's (nm, kJ/mol).
//
// Functional forms: Halgren, J. Comput. Chem. 17 (1996) 490 (MMFF94 I), as RDKit evaluates them
// (Code/ForceField/MMFF); the terms are those RDKit's MMFF::constructForceField enumerates with
// its defaults (no interactions between disconnected fragments), so OpenMM's energy equals
// RDKit's calcEnergy() x 4.184. RDKit also drops pairs farther apart than 100 A when it builds
// the field; no ligand is that large, and here every pair is kept (no cut-off).
#include <GraphMol/ROMol.h>
#include <openmm/System.h>

#include <string>
#include <vector>

namespace dit::docking {

struct MmffForces {
  std::vector<int> types;             // MMFF94 atom type (1..99) per atom, in atom order
  std::vector<double> charges;        // MMFF partial charges (e), in atom order
  // Per atom, from the MMFF94 vdW table of its type (MMFF94 I gives the pair combination rules):
  std::vector<double> vdw_radius;     // R*_ii (A): the like-pair minimum-energy separation
                                      // (a contact distance, about twice a radius: C 3.9 A)
  std::vector<double> vdw_epsilon;    // eps_ii (kcal/mol): the like-pair well depth
  std::vector<double> vdw_alpha;      // alpha_i (A^3), polarisability
  std::vector<double> vdw_n;          // N_i, effective number of valence electrons
  std::vector<double> vdw_a;          // A_i
  std::vector<double> vdw_g;          // G_i
  std::vector<char> vdw_da;           // 'D' donor (polar H), 'A' acceptor, '-' neither
  // Terms added. oop counts RDKit's three Wilson angles per trivalent centre; torsions counts
  // (i,j,k,l) quartets with a non-zero term; pairs counts non-bonded pairs (vdW and/or
  // electrostatics), vdw_pairs and ele_pairs each kind.
  int bonds = 0, angles = 0, linear_angles = 0, stretch_bends = 0, oop = 0, torsions = 0;
  int pairs = 0, vdw_pairs = 0, ele_pairs = 0;
};

// Adds the MMFF94 intramolecular energy of `mol` (explicit hydrogens, sanitised, as from RDKit
// with AddHs) for particles first_particle .. first_particle + N - 1 of `system` (already added,
// one per atom in atom order) as OpenMM forces in force group `force_group`: bond stretch,
// angle bend (and the linear-angle form), stretch-bend, out-of-plane (Wilson angle), torsion,
// buffered 14-7 vdW and buffered Coulomb (constant dielectric 1, 1-4 electrostatics x0.75) over
// the same atom pairs as RDKit's MMFF (no cutoff). MMFF94 (not 94s). `mol` is not modified (RDKit's
// MMFF typer kekulises and re-perceives aromaticity; it runs on a copy). Throws dit::Error naming
// `source` and the atom when RDKit has no MMFF parameters for the molecule or for a bond or an
// angle (torsion, stretch-bend and out-of-plane terms without parameters are left out, as RDKit
// does), and naming `source` when the particles or the force group are out of range.
MmffForces add_mmff_forces(OpenMM::System& system, const RDKit::ROMol& mol, int first_particle,
                           int force_group, const std::string& source);

}  // namespace dit::docking
