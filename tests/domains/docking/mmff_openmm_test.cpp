// MMFF94 as OpenMM forces (domains/docking/mmff_openmm.h) against RDKit's own MMFF94: energy
// and forces on OpenMM's Reference platform for ETKDG conformers and for copies with every atom
// moved 0.1 A (so that no term sits at its minimum), the terms counted against RDKit's, a
// molecule MMFF94 cannot type, and the particle offset and force group.
// Needs OpenMM linked into the test (OpenMM::OpenMM); no plugins.
#include <ForceField/ForceField.h>
#include <ForceField/MMFF/AngleBend.h>
#include <ForceField/MMFF/BondStretch.h>
#include <ForceField/MMFF/Nonbonded.h>
#include <ForceField/MMFF/OopBend.h>
#include <ForceField/MMFF/StretchBend.h>
#include <ForceField/MMFF/TorsionAngle.h>
#include <GraphMol/DistGeomHelpers/Embedder.h>
#include <GraphMol/ForceFieldHelpers/MMFF/Builder.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RWMol.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <dit/error.h>
#include <gtest/gtest.h>
#include <openmm/Context.h>
#include <openmm/HarmonicBondForce.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/System.h>
#include <openmm/VerletIntegrator.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "domains/docking/mmff_openmm.h"

namespace {

using dit::docking::add_mmff_forces;
using dit::docking::MmffForces;

constexpr double kKjPerKcal = 4.184;
constexpr double kAPerNm = 10.0;

struct Case {
  const char* name;
  const char* smiles;
};

// Together: aromatic rings, amides, carboxylate and ammonium, sulfonamides, nitrile and alkyne
// (linear angles), F/Cl/Br, sp2 ring N (out-of-plane terms), a thiadiazole, a salt (two
// fragments), three-, four- and five-membered rings (MMFF's ring angle and torsion classes).
const Case kCases[] = {
    {"paracetamol", "CC(=O)Nc1ccc(O)cc1"},
    {"phenylalanine_zwitterion", "[NH3+][C@@H](Cc1ccccc1)C(=O)[O-]"},
    {"chlorobenzenesulfonamide", "NS(=O)(=O)c1ccc(Cl)cc1"},
    {"fluorobenzonitrile", "N#Cc1ccc(F)cc1"},
    {"bromophenyl_propargyl_ether", "C#CCOc1ccccc1Br"},
    {"nicotinamide_imidazole", "NC(=O)c1cccnc1Cn1ccnc1"},
    {"acetazolamide", "CC(=O)Nc1nnc(S(N)(=O)=O)s1"},
    {"trifluoromethyl_ester", "FC(F)(F)c1ccc(OC(=O)C)cc1"},
    {"sodium_acetate", "CC(=O)[O-].[Na+]"},
    {"penicillin_g", "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)[O-]"},  // 4/5 rings
    {"cyclopropylbenzene_amine", "NC1(c2ccccc2)CC1"},                                // 3 ring
    {"imatinib", "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1"},
};

std::unique_ptr<RDKit::RWMol> embedded(const std::string& smiles) {
  std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol(smiles));
  if (!mol) throw std::runtime_error("bad SMILES " + smiles);
  RDKit::MolOps::addHs(*mol);
  RDKit::DGeomHelpers::EmbedParameters params = RDKit::DGeomHelpers::ETKDGv3;
  params.randomSeed = 42;
  if (RDKit::DGeomHelpers::EmbedMolecule(*mol, params) < 0) {
    throw std::runtime_error("cannot embed " + smiles);
  }
  return mol;
}

// Moves every atom 0.1 A in a random direction (fixed seed).
void perturb(RDKit::ROMol& mol, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  auto& conf = mol.getConformer();
  for (unsigned i = 0; i < mol.getNumAtoms(); ++i) {
    RDGeom::Point3D d(normal(rng), normal(rng), normal(rng));
    d *= 0.1 / d.length();
    conf.getAtomPos(i) += d;
  }
}

struct Evaluation {
  double energy = 0;                // kJ/mol
  std::vector<OpenMM::Vec3> force;  // kJ/mol/nm, per atom
  std::vector<std::string> terms;   // per-force breakdown, for messages
};

struct RdkitCounts {
  int bonds = 0, angles = 0, stretch_bends = 0, oop = 0, torsions = 0, vdw = 0, ele = 0;
};

// RDKit: calcEnergy and the raw gradient sum (ForceField::calcGrad(pos, grad), without the
// minimiser's gradient scaling), in OpenMM's units.
Evaluation rdkit_mmff(const RDKit::ROMol& input, RdkitCounts* counts = nullptr) {
  RDKit::RWMol mol(input);
  std::unique_ptr<ForceFields::ForceField> ff(RDKit::MMFF::constructForceField(mol));
  ff->initialize();
  const unsigned n = mol.getNumAtoms();
  std::vector<double> pos(3 * n), grad(3 * n, 0.0);
  const auto& conf = mol.getConformer();
  for (unsigned i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) pos[3 * i + c] = conf.getAtomPos(i)[c];
  }
  Evaluation out;
  out.energy = ff->calcEnergy(pos.data()) * kKjPerKcal;
  ff->calcGrad(pos.data(), grad.data());
  for (unsigned i = 0; i < n; ++i) {
    out.force.emplace_back(-grad[3 * i] * kKjPerKcal * kAPerNm,
                           -grad[3 * i + 1] * kKjPerKcal * kAPerNm,
                           -grad[3 * i + 2] * kKjPerKcal * kAPerNm);
  }
  // Per kind of contribution (kJ/mol), and the counts.
  double e[7] = {0, 0, 0, 0, 0, 0, 0};
  RdkitCounts c;
  for (const auto& contrib : ff->contribs()) {
    const auto* p = contrib.get();
    const double ei = p->getEnergy(pos.data()) * kKjPerKcal;
    if (dynamic_cast<const ForceFields::MMFF::BondStretchContrib*>(p)) {
      e[0] += ei, ++c.bonds;
    } else if (dynamic_cast<const ForceFields::MMFF::AngleBendContrib*>(p)) {
      e[1] += ei, ++c.angles;
    } else if (dynamic_cast<const ForceFields::MMFF::StretchBendContrib*>(p)) {
      e[2] += ei, ++c.stretch_bends;
    } else if (dynamic_cast<const ForceFields::MMFF::OopBendContrib*>(p)) {
      e[3] += ei, ++c.oop;
    } else if (dynamic_cast<const ForceFields::MMFF::TorsionAngleContrib*>(p)) {
      e[4] += ei, ++c.torsions;
    } else if (dynamic_cast<const ForceFields::MMFF::VdWContrib*>(p)) {
      e[5] += ei, ++c.vdw;
    } else if (dynamic_cast<const ForceFields::MMFF::EleContrib*>(p)) {
      e[6] += ei, ++c.ele;
    }
  }
  const char* names[7] = {"bond", "angle", "stretch-bend", "oop", "torsion", "vdw", "ele"};
  for (int k = 0; k < 7; ++k) {
    out.terms.push_back(std::string(names[k]) + " " + std::to_string(e[k]));
  }
  if (counts) *counts = c;
  return out;
}

// OpenMM: `offset` massive dummy particles first, then the molecule's; MMFF in force group 3,
// a harmonic bond between the first two dummies (if any) in group 0.
Evaluation openmm_mmff(const RDKit::ROMol& mol, int offset = 0, MmffForces* terms = nullptr) {
  OpenMM::System system;
  const unsigned n = mol.getNumAtoms();
  for (int i = 0; i < offset; ++i) system.addParticle(1.0);
  for (unsigned i = 0; i < n; ++i) system.addParticle(mol.getAtomWithIdx(i)->getMass());
  if (offset >= 2) {
    auto* spring = new OpenMM::HarmonicBondForce();
    spring->addBond(0, 1, 0.1, 1000.0);
    system.addForce(spring);
  }
  const int first_force = system.getNumForces();
  const MmffForces f = add_mmff_forces(system, mol, offset, 3, "test.sdf");
  if (terms) *terms = f;
  std::vector<OpenMM::Vec3> x;
  for (int i = 0; i < offset; ++i) x.emplace_back(0.3 * i, 5.0, 5.0);
  const auto& conf = mol.getConformer();
  for (unsigned i = 0; i < n; ++i) {
    const auto& p = conf.getAtomPos(i);
    x.emplace_back(p.x / kAPerNm, p.y / kAPerNm, p.z / kAPerNm);
  }
  for (int k = first_force; k < system.getNumForces(); ++k) {
    EXPECT_EQ(system.getForce(k).getForceGroup(), 3);
  }
  OpenMM::VerletIntegrator integrator(0.001);
  OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
  context.setPositions(x);
  const OpenMM::State state =
      context.getState(OpenMM::State::Energy | OpenMM::State::Forces, false, 1 << 3);
  Evaluation out;
  out.energy = state.getPotentialEnergy();
  const auto& all = state.getForces();
  for (int i = 0; i < offset; ++i) {
    EXPECT_EQ(all[i][0], 0.0);
    EXPECT_EQ(all[i][1], 0.0);
    EXPECT_EQ(all[i][2], 0.0);
  }
  out.force.assign(all.begin() + offset, all.end());
  return out;
}

// Same, one group per force, for the breakdown in failure messages.
std::vector<std::string> openmm_breakdown(const RDKit::ROMol& mol) {
  OpenMM::System system;
  for (unsigned i = 0; i < mol.getNumAtoms(); ++i) system.addParticle(1.0);
  add_mmff_forces(system, mol, 0, 0, "test.sdf");
  for (int k = 0; k < system.getNumForces(); ++k) system.getForce(k).setForceGroup(k);
  std::vector<OpenMM::Vec3> x;
  for (const auto& p : mol.getConformer().getPositions()) {
    x.emplace_back(p.x / kAPerNm, p.y / kAPerNm, p.z / kAPerNm);
  }
  OpenMM::VerletIntegrator integrator(0.001);
  OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
  context.setPositions(x);
  std::vector<std::string> out;
  for (int k = 0; k < system.getNumForces(); ++k) {
    out.push_back(std::to_string(k) + ": " +
                  std::to_string(context.getState(OpenMM::State::Energy, false, 1 << k)
                                     .getPotentialEnergy()));
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  return s;
}

struct Errors {
  double energy_rel = 0, energy_abs = 0, force_rel = 0;
};

// Compares OpenMM with RDKit for one geometry: |dE| / |E| < 1e-6 (or |dE| < 1e-4 kJ/mol) and
// max |dF| / max |F| < 1e-3.
Errors compare(const RDKit::ROMol& mol, const std::string& what) {
  const Evaluation ref = rdkit_mmff(mol);
  const Evaluation omm = openmm_mmff(mol);
  Errors e;
  e.energy_abs = std::abs(omm.energy - ref.energy);
  e.energy_rel = e.energy_abs / std::max(std::abs(ref.energy), 1e-12);
  double max_force = 0, max_diff = 0;
  for (std::size_t i = 0; i < ref.force.size(); ++i) {
    for (int c = 0; c < 3; ++c) {
      max_force = std::max(max_force, std::abs(ref.force[i][c]));
      max_diff = std::max(max_diff, std::abs(omm.force[i][c] - ref.force[i][c]));
    }
  }
  e.force_rel = max_diff / max_force;
  const bool energy_ok = e.energy_rel < 1e-6 || e.energy_abs < 1e-4;
  EXPECT_TRUE(energy_ok) << what << ": OpenMM " << omm.energy << " kJ/mol, RDKit " << ref.energy
                         << " kJ/mol; RDKit terms: " << join(ref.terms)
                         << "; OpenMM forces: " << join(openmm_breakdown(mol));
  EXPECT_LT(e.force_rel, 1e-3) << what << ": max |dF| " << max_diff << " of max |F| " << max_force
                               << " kJ/mol/nm";
  return e;
}

TEST(MmffOpenMM, EnergyAndForcesMatchRdkit) {
  Errors worst;
  for (const auto& c : kCases) {
    auto mol = embedded(c.smiles);
    for (int perturbed = 0; perturbed < 2; ++perturbed) {
      if (perturbed) perturb(*mol, 7);
      const std::string what = std::string(c.name) + (perturbed ? " (perturbed)" : " (ETKDG)");
      const Errors e = compare(*mol, what);
      std::cout << "[ mmff     ] " << what << ": |dE|/|E| " << e.energy_rel << ", |dE| "
                << e.energy_abs << " kJ/mol, max|dF|/max|F| " << e.force_rel << "\n";
      worst.energy_rel = std::max(worst.energy_rel, e.energy_rel);
      worst.energy_abs = std::max(worst.energy_abs, e.energy_abs);
      worst.force_rel = std::max(worst.force_rel, e.force_rel);
    }
  }
  std::cout << "[ mmff     ] worst: |dE|/|E| " << worst.energy_rel << ", |dE| " << worst.energy_abs
            << " kJ/mol, max|dF|/max|F| " << worst.force_rel << "\n";
}

// At exactly 180 degrees the linear-angle term is at its minimum and the angle has no
// derivative: the forces must stay finite and equal RDKit's.
TEST(MmffOpenMM, ExactlyLinearNitrileMatchesRdkit) {
  auto mol = embedded("N#Cc1ccc(F)cc1");  // atoms: N 0, C 1, ring C 2
  auto& conf = mol->getConformer();
  RDGeom::Point3D axis = conf.getAtomPos(1) - conf.getAtomPos(2);
  axis.normalize();
  conf.setAtomPos(0, conf.getAtomPos(1) + axis * 1.16);
  const Errors e = compare(*mol, "fluorobenzonitrile (linear)");
  std::cout << "[ mmff     ] fluorobenzonitrile (linear): |dE|/|E| " << e.energy_rel
            << ", max|dF|/max|F| " << e.force_rel << "\n";
  for (const auto& f : openmm_mmff(*mol).force) {
    for (int c = 0; c < 3; ++c) ASSERT_TRUE(std::isfinite(f[c]));
  }
}

// Likewise an exactly planar trivalent centre (out-of-plane angle zero, dihedral 0 or 180).
TEST(MmffOpenMM, ExactlyPlanarFormaldehydeMatchesRdkit) {
  auto mol = embedded("C=O");  // C 0, O 1, H 2, H 3
  auto& conf = mol->getConformer();
  const RDGeom::Point3D c = conf.getAtomPos(0);
  RDGeom::Point3D normal = (conf.getAtomPos(1) - c).crossProduct(conf.getAtomPos(2) - c);
  normal.normalize();
  const RDGeom::Point3D h = conf.getAtomPos(3);
  conf.setAtomPos(3, h - normal * normal.dotProduct(h - c));
  const Errors e = compare(*mol, "formaldehyde (planar)");
  std::cout << "[ mmff     ] formaldehyde (planar): |dE|/|E| " << e.energy_rel
            << ", max|dF|/max|F| " << e.force_rel << "\n";
  for (const auto& f : openmm_mmff(*mol).force) {
    for (int k = 0; k < 3; ++k) ASSERT_TRUE(std::isfinite(f[k]));
  }
}

TEST(MmffOpenMM, TermCountsMatchRdkit) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto mol = embedded(c.smiles);
    RdkitCounts ref;
    rdkit_mmff(*mol, &ref);
    MmffForces terms;
    openmm_mmff(*mol, 0, &terms);
    EXPECT_EQ(terms.bonds, ref.bonds);
    EXPECT_EQ(terms.angles, ref.angles);
    EXPECT_EQ(terms.stretch_bends, ref.stretch_bends);
    EXPECT_EQ(terms.oop, ref.oop);
    EXPECT_EQ(terms.torsions, ref.torsions);
    EXPECT_EQ(terms.vdw_pairs, ref.vdw);
    EXPECT_EQ(terms.ele_pairs, ref.ele);
    EXPECT_EQ(terms.types.size(), mol->getNumAtoms());
    EXPECT_EQ(terms.charges.size(), mol->getNumAtoms());
  }
}

TEST(MmffOpenMM, LinearAnglesAndOutOfPlaneTermsArePresent) {
  MmffForces nitrile, imidazole;
  openmm_mmff(*embedded("N#Cc1ccc(F)cc1"), 0, &nitrile);
  openmm_mmff(*embedded("NC(=O)c1cccnc1Cn1ccnc1"), 0, &imidazole);
  EXPECT_EQ(nitrile.linear_angles, 1);  // ring C - C#N
  EXPECT_GT(imidazole.oop, 0);
  EXPECT_EQ(imidazole.oop % 3, 0);
}

TEST(MmffOpenMM, ChargesAndVdwParametersAreExposed) {
  auto mol = embedded("[NH3+]CC(=O)[O-]");  // glycine zwitterion: MMFF charges sum to zero
  MmffForces f;
  openmm_mmff(*mol, 0, &f);
  double total = 0;
  for (double q : f.charges) total += q;
  EXPECT_NEAR(total, 0.0, 1e-6);
  for (unsigned i = 0; i < mol->getNumAtoms(); ++i) {
    EXPECT_GT(f.vdw_radius[i], 1.0) << i;  // R*_ii: a like-pair distance (C about 3.9 A)
    EXPECT_LT(f.vdw_radius[i], 5.0) << i;
    EXPECT_GT(f.vdw_epsilon[i], 0.0) << i;
    if (mol->getAtomWithIdx(i)->getAtomicNum() == 8) {
      EXPECT_EQ(f.vdw_da[i], 'A') << i;
    }
  }
  // The ammonium group (N: MMFF type 34) is positive, carboxylate O (type 32) negative.
  EXPECT_EQ(f.types[0], 34);
  double ammonium = f.charges[0];
  for (const auto* h : mol->atomNeighbors(mol->getAtomWithIdx(0))) {
    if (h->getAtomicNum() == 1) ammonium += f.charges[h->getIdx()];
  }
  EXPECT_GT(ammonium, 0.3);
  EXPECT_EQ(f.types[3], 32);
  EXPECT_LT(f.charges[3], -0.5);
}

TEST(MmffOpenMM, ParticleOffsetGivesTheSameEnergyAndForces) {
  auto mol = embedded("CC(=O)Nc1nnc(S(N)(=O)=O)s1");
  perturb(*mol, 11);
  const Evaluation plain = openmm_mmff(*mol, 0);
  const Evaluation shifted = openmm_mmff(*mol, 3);
  EXPECT_NEAR(shifted.energy, plain.energy, 1e-9 * std::abs(plain.energy));
  ASSERT_EQ(shifted.force.size(), plain.force.size());
  for (std::size_t i = 0; i < plain.force.size(); ++i) {
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(shifted.force[i][c], plain.force[i][c], 1e-9);
  }
}

TEST(MmffOpenMM, InputMoleculeIsNotModified) {
  auto mol = embedded("NC(=O)c1cccnc1Cn1ccnc1");
  const std::string before = RDKit::MolToSmiles(*mol);
  std::vector<bool> aromatic;
  for (const auto* a : mol->atoms()) aromatic.push_back(a->getIsAromatic());
  OpenMM::System system;
  for (unsigned i = 0; i < mol->getNumAtoms(); ++i) system.addParticle(1.0);
  add_mmff_forces(system, *mol, 0, 0, "x.sdf");
  EXPECT_EQ(RDKit::MolToSmiles(*mol), before);
  for (const auto* a : mol->atoms()) EXPECT_EQ(a->getIsAromatic(), aromatic[a->getIdx()]);
}

TEST(MmffOpenMM, UntypableMoleculeThrowsNamingSourceAndAtom) {
  std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol("B(O)(O)c1ccccc1"));  // no MMFF94 boron
  RDKit::MolOps::addHs(*mol);
  OpenMM::System system;
  for (unsigned i = 0; i < mol->getNumAtoms(); ++i) system.addParticle(1.0);
  try {
    add_mmff_forces(system, *mol, 0, 0, "ligands/phenylboronic.sdf");
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ligands/phenylboronic.sdf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("atom 0 (B)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("MMFF94"), std::string::npos) << msg;
  }
  EXPECT_EQ(system.getNumForces(), 0);  // nothing half-added
}

TEST(MmffOpenMM, TooFewParticlesOrBadGroupThrow) {
  auto mol = embedded("CCO");
  OpenMM::System system;
  for (unsigned i = 0; i + 1 < mol->getNumAtoms(); ++i) system.addParticle(1.0);
  EXPECT_THROW(add_mmff_forces(system, *mol, 0, 0, "a.sdf"), dit::Error);
  system.addParticle(1.0);
  EXPECT_THROW(add_mmff_forces(system, *mol, 1, 0, "a.sdf"), dit::Error);
  EXPECT_THROW(add_mmff_forces(system, *mol, 0, 32, "a.sdf"), dit::Error);
  EXPECT_EQ(system.getNumForces(), 0);
  EXPECT_NO_THROW(add_mmff_forces(system, *mol, 0, 31, "a.sdf"));
}

}  // namespace
