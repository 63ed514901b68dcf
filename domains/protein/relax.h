#pragma once
// Internal to libdit_protein: restrained geometry relaxation of a backbone with OpenMM.
//
// The System (built in code, OpenMM units nm and kJ/mol; one particle per N, CA, C, O and per
// CB that is present: cb non-empty, entry finite, residue not 'G'):
//   HarmonicBondForce   N-CA 1.458, CA-C 1.525, C=O 1.231, C-N(+1) 1.329, CA-CB 1.530 A
//                       (Engh & Huber 1991), k = bond_k
//   HarmonicAngleForce  N-CA-C 111.2, CA-C-N(+1) 116.2, C-N(+1)-CA(+1) 121.7, CA-C-O 120.1,
//                       O-C-N(+1) 122.7, N-CA-CB 110.5, C-CA-CB 110.1 deg, k = angle_k
//   PeriodicTorsionForce (n = 1, k = omega_k) on omega CA-C-N(+1)-CA(+1) (minimum at 180 deg,
//                       or at 0 deg for a cis peptide: CA(i)-CA(i+1) < 3.3 A) and on
//                       O-C-N(+1)-CA(+1) (minimum at 0, or 180 when cis) keeping O in the plane
//   CustomTorsionForce  harmonic improper C-N-CA-CB at its ideal L value (chirality), k = chiral_k
//   CustomNonbondedForce soft repulsion k_rep (s - r)^2 for r < s, s = clash_scale (R_i + R_j),
//                       R = 1.55 N, 1.70 C/CA/CB, 1.52 O A; 1-2 and 1-3 pairs excluded
//   CustomExternalForce 0.5 ca_restraint |x - x0|^2 on every CA (x0 = input position)
//   CMAPTorsionForce    (only with a `rama` map and rama_k > 0) rama_k kT x the knowledge-based
//                       Ramachandran energy -ln p(phi, psi) of training chains (the "rama" table
//                       of data/protein/ca-potential.txt) on each residue with both neighbours
//                       bonded, as Ramachandran restraints in crystallographic refinement
//                       (Phenix, Coot) pull residues out of disallowed regions
//   CustomTorsionForce  0.5 target_k (theta - theta0)^2 on phi and psi of each rama_targets
//                       residue and on omega of each planar_peptides peptide (the outlier polish)
// Peptide terms join residue i to i+1 only where CA(i)-CA(i+1) <= 4.2 A (else a chain break).
// Then OpenMM's LocalEnergyMinimizer, in rounds of 100 steps until the RMS force is below
// `tolerance` or `max_iterations` steps were granted.
#include "domains/protein/backbone.h"
#include "domains/protein/guidance.h"

#include <string>
#include <vector>

namespace dit::protein {

// A (phi, psi) target of residue `residue` (degrees), for the outlier polish.
struct RamaTarget {
  size_t residue = 0;
  double phi = 0, psi = 0;
};

struct RelaxOptions {
  double ca_restraint = 2000.0;  // kJ/mol/nm^2 (= 20 kJ/mol/A^2) on each CA
  double bond_k = 3.0e5;         // kJ/mol/nm^2
  double angle_k = 500.0;        // kJ/mol/rad^2
  double omega_k = 40.0;         // kJ/mol, PeriodicTorsionForce k (n = 1)
  double chiral_k = 400.0;       // kJ/mol/rad^2
  double repulsion_k = 1.0e5;    // kJ/mol/nm^2
  double clash_scale = 0.8;      // s = clash_scale * (R_i + R_j)
  double tolerance = 1.0;        // kJ/mol/nm, RMS force to stop at
  int max_iterations = 5000;     // minimizer steps granted at most
  std::string platform = "CPU";  // "CPU" (falls back to "Reference" when unavailable) or "Reference"
  int threads = 1;               // CPU platform threads (0: OpenMM's default)
  // Every consecutive pair is peptide-bonded and trans (generated chains have no breaks; by
  // default a CA-CA above 4.2 A is a chain break and one below 3.3 A a cis peptide, as in
  // files of real chains).
  bool continuous = false;
  const CaPotential::Table* rama = nullptr;  // phi, psi map (both axes wrap, centres at 0, w, 2w, ...)
  double rama_k = 0.0;                       // kT units of the map (kT = 2.494 kJ/mol, 300 K)
  // The outlier polish (ProteinDomain::decode_trace): harmonic torsion restraints
  // 0.5 target_k (dtheta)^2 pulling each target residue's phi and psi to the target's, and the
  // omega of each listed peptide (i: the one joining residue i to i + 1) to planarity (180 deg,
  // or 0 for a cis peptide).
  std::vector<RamaTarget> rama_targets;
  std::vector<size_t> planar_peptides;
  double target_k = 200.0;  // kJ/mol/rad^2
};

struct RelaxReport {
  std::string platform;        // the OpenMM platform that ran
  double energy_before = 0;    // kJ/mol, all terms above, at the input positions
  double energy_after = 0;     // kJ/mol
  double rms_force_after = 0;  // kJ/mol/nm
  double ca_rmsd = 0;          // A, CA after vs input (no superposition)
  int iterations = 0;          // minimizer steps granted (an upper bound: OpenMM 7.7 reports no count)
  int cis_peptides = 0;        // peptides kept cis
  int particles = 0;
};

// Relaxes `backbone` in place (N, CA, C, O and the CBs present). Throws dit::Error when the
// arrays disagree in size, a target residue or peptide has no bonded neighbours, a coordinate is not finite, or OpenMM fails (message names it).
RelaxReport relax_backbone(Backbone& backbone, const RelaxOptions& options = {});

// Deviation of a backbone's covalent geometry from the ideal values above (peptide terms only
// across CA-CA <= 4.2 A): largest and RMS |bond - ideal| (A) and |angle - ideal| (deg), the
// largest omega deviation from 180 (or 0 for cis) in deg, and the number of residues whose CB
// has D chirality (improper C-N-CA-CB of the wrong sign).
struct GeometryDeviation {
  double bond_max = 0, bond_rms = 0, angle_max = 0, angle_rms = 0, omega_max = 0;
  int d_residues = 0, bonds = 0, angles = 0;
};
GeometryDeviation geometry_deviation(const Backbone& backbone);

}  // namespace dit::protein
