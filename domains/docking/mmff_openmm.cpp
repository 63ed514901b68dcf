#include "domains/docking/mmff_openmm.h"

#include <ForceField/MMFF/Params.h>
#include <GraphMol/ForceFieldHelpers/MMFF/AtomTyper.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RWMol.h>
#include <dit/error.h>
#include <openmm/CustomAngleForce.h>
#include <openmm/CustomBondForce.h>
#include <openmm/CustomCompoundBondForce.h>
#include <openmm/PeriodicTorsionForce.h>

#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>

namespace dit::docking {
namespace {

namespace mmff = RDKit::MMFF;

// MMFF94's constants (MMFF94 I; the values RDKit uses) and OpenMM's units.
constexpr double kPi = 3.14159265358979323846;
constexpr double kRadPerDeg = kPi / 180.0;
constexpr double kKjPerKcal = 4.184;
constexpr double kAPerNm = 10.0;
constexpr double kMdyneA = 143.9325;        // mdyn A -> kcal/mol: force constants of bonded terms
constexpr double kBondCubic = -2.0;         // cs (1/A), bond stretch
constexpr double kBondQuartic = 7.0 / 12.0;  // x cs^2, bond stretch
constexpr double kAngleCubic = -0.006981317;  // cb (1/deg), angle bend
constexpr double kCoulomb = 332.0716;       // kcal/mol A / e^2
constexpr double kEleBuffer = 0.05;         // A, added to r in the electrostatic denominator
constexpr double kEle14Scale = 0.75;        // 1-4 electrostatics
constexpr double kVdwB = 0.07;              // buffered 14-7 (Halgren 1992): delta
constexpr double kVdwC = 0.12;              //                                  gamma

// Doubles written into Lepton expressions at full precision.
std::string num(double x) {
  std::ostringstream s;
  s << std::setprecision(17) << x;
  return s.str();
}

std::string atom_label(const RDKit::ROMol& mol, unsigned idx) {
  return "atom " + std::to_string(idx) + " (" + mol.getAtomWithIdx(idx)->getSymbol() + ")";
}

bool has_triple_bond(const RDKit::ROMol& mol, const RDKit::Atom* atom) {
  for (const RDKit::Bond* b : mol.atomBonds(atom)) {
    if (b->getBondType() == RDKit::Bond::TRIPLE) return true;
  }
  return false;
}

bool sp2_or_sp3(const RDKit::Atom* atom) {
  return atom->getHybridization() == RDKit::Atom::SP2 ||
         atom->getHybridization() == RDKit::Atom::SP3;
}

std::vector<unsigned> neighbors(const RDKit::ROMol& mol, unsigned idx) {
  std::vector<unsigned> out;
  for (const RDKit::Atom* a : mol.atomNeighbors(mol.getAtomWithIdx(idx))) {
    out.push_back(a->getIdx());
  }
  return out;
}

}  // namespace

MmffForces add_mmff_forces(OpenMM::System& system, const RDKit::ROMol& mol, int first_particle,
                           int force_group, const std::string& source) {
  const unsigned n = mol.getNumAtoms();
  if (first_particle < 0 || first_particle + static_cast<long>(n) > system.getNumParticles()) {
    throw Error(source + ": MMFF needs particles " + std::to_string(first_particle) + ".." +
                std::to_string(first_particle + static_cast<long>(n) - 1) + " for its " +
                std::to_string(n) + " atoms; the OpenMM system has " +
                std::to_string(system.getNumParticles()));
  }
  if (force_group < 0 || force_group > 31) {
    throw Error(source + ": force group " + std::to_string(force_group) +
                " is outside OpenMM's 0..31");
  }

  // RDKit's typer kekulises the molecule and sets MMFF aromaticity on it: a copy, same indices.
  RDKit::RWMol work(mol);
  mmff::MMFFMolProperties props(work);  // MMFF94, constant dielectric 1
  if (!props.isValid()) {
    std::string untyped;
    int count = 0;
    for (unsigned i = 0; i < n; ++i) {
      if (props.getMMFFAtomType(i) != 0) continue;
      if (count++ < 5) untyped += (untyped.empty() ? "" : ", ") + atom_label(work, i);
    }
    if (count > 5) untyped += " and " + std::to_string(count - 5) + " more";
    if (untyped.empty()) untyped = "an atom";
    throw Error(source + ": RDKit has no MMFF94 atom type for " + untyped);
  }
  const auto* prop_table = mmff::DefaultParameters::getMMFFProp();
  const auto* vdw_table = mmff::DefaultParameters::getMMFFVdW();
  auto particle = [&](unsigned idx) { return first_particle + static_cast<int>(idx); };

  MmffForces out;
  out.types.resize(n);
  out.charges.resize(n);
  out.vdw_radius.assign(n, 0.0);
  out.vdw_epsilon.assign(n, 0.0);
  out.vdw_alpha.assign(n, 0.0);
  out.vdw_n.assign(n, 0.0);
  out.vdw_a.assign(n, 0.0);
  out.vdw_g.assign(n, 0.0);
  out.vdw_da.assign(n, '-');
  for (unsigned i = 0; i < n; ++i) {
    out.types[i] = props.getMMFFAtomType(i);
    out.charges[i] = props.getMMFFPartialCharge(i);
    ForceFields::MMFF::MMFFVdWRijstarEps self;
    if (props.getMMFFVdWParams(i, i, self)) {
      out.vdw_radius[i] = self.R_ij_star;
      out.vdw_epsilon[i] = self.epsilon;
    }
    if (const auto* v = (*vdw_table)(out.types[i])) {
      out.vdw_alpha[i] = v->alpha_i;
      out.vdw_n[i] = v->N_i;
      out.vdw_a[i] = v->A_i;
      out.vdw_g[i] = v->G_i;
      out.vdw_da[i] = (v->DA == 'D' || v->DA == 'A') ? static_cast<char>(v->DA) : '-';
    }
  }

  // Bond stretch: E = 143.9325/2 kb dr^2 (1 + cs dr + 7/12 cs^2 dr^2), dr = r - r0 (A).
  auto bond_force = std::make_unique<OpenMM::CustomBondForce>(
      "kb*dr^2*(1+" + num(kBondCubic * kAPerNm) + "*dr+" +
      num(kBondQuartic * kBondCubic * kBondCubic * kAPerNm * kAPerNm) + "*dr^2); dr=r-r0");
  bond_force->addPerBondParameter("kb");  // kJ/mol/nm^2
  bond_force->addPerBondParameter("r0");  // nm
  for (const RDKit::Bond* bond : work.bonds()) {
    const unsigned i = bond->getBeginAtomIdx(), j = bond->getEndAtomIdx();
    unsigned type = 0;
    ForceFields::MMFF::MMFFBond p;
    if (!props.getMMFFBondStretchParams(work, i, j, type, p)) {
      throw Error(source + ": RDKit has no MMFF94 bond-stretch parameters for " +
                  atom_label(work, i) + " - " + atom_label(work, j));
    }
    bond_force->addBond(particle(i), particle(j),
                        {0.5 * kMdyneA * p.kb * kKjPerKcal * kAPerNm * kAPerNm, p.r0 / kAPerNm});
    ++out.bonds;
  }

  // Angle bend: E = 143.9325/2 ka dtheta^2 (1 + cb dtheta) (dtheta in rad for the square, cb per
  // degree), or for a linear centre (MMFF "linh") E = 143.9325 ka (1 + cos theta).
  auto angle_force = std::make_unique<OpenMM::CustomAngleForce>(
      "ka*dt^2*(1+" + num(kAngleCubic / kRadPerDeg) + "*dt); dt=theta-theta0");
  angle_force->addPerAngleParameter("ka");      // kJ/mol/rad^2
  angle_force->addPerAngleParameter("theta0");  // rad
  // The linear form from the bond vectors' dot product: smooth at 180 degrees, its minimum,
  // where the angle itself has no derivative.
  auto linear_force = std::make_unique<OpenMM::CustomCompoundBondForce>(
      3, "ka*(1+c); c=((x1-x2)*(x3-x2)+(y1-y2)*(y3-y2)+(z1-z2)*(z3-z2))/"
         "(distance(p1,p2)*distance(p3,p2))");
  linear_force->addPerBondParameter("ka");  // kJ/mol
  // Stretch-bend: E = 143.9325 dtheta (kIJK dr_ij + kKJI dr_kj) (dtheta in rad, dr in A); none
  // at linear centres.
  auto stbn_force = std::make_unique<OpenMM::CustomCompoundBondForce>(
      3, "(angle(p1,p2,p3)-theta0)*(kijk*(distance(p1,p2)-r1)+kkji*(distance(p2,p3)-r2))");
  for (const char* name : {"theta0", "kijk", "kkji", "r1", "r2"}) {
    stbn_force->addPerBondParameter(name);  // rad, kJ/mol/rad/nm (x2), nm (x2)
  }
  for (unsigned j = 0; j < n; ++j) {
    const RDKit::Atom* centre = work.getAtomWithIdx(j);
    if (centre->getDegree() < 2) continue;
    const bool linear = (*prop_table)(out.types[j])->linh != 0;
    const std::vector<unsigned> nb = neighbors(work, j);
    for (std::size_t a = 0; a < nb.size(); ++a) {
      for (std::size_t b = a + 1; b < nb.size(); ++b) {
        const unsigned i = nb[a], k = nb[b];
        unsigned type = 0;
        ForceFields::MMFF::MMFFAngle p;
        if (!props.getMMFFAngleBendParams(work, i, j, k, type, p)) {
          throw Error(source + ": RDKit has no MMFF94 angle-bend parameters for " +
                      atom_label(work, i) + " - " + atom_label(work, j) + " - " +
                      atom_label(work, k));
        }
        if (linear) {
          linear_force->addBond({particle(i), particle(j), particle(k)},
                                {kMdyneA * p.ka * kKjPerKcal});
          ++out.linear_angles;
        } else {
          angle_force->addAngle(particle(i), particle(j), particle(k),
                                {0.5 * kMdyneA * p.ka * kKjPerKcal, p.theta0 * kRadPerDeg});
        }
        ++out.angles;
        if (linear) continue;
        ForceFields::MMFF::MMFFStbn sb;
        ForceFields::MMFF::MMFFBond sb_bonds[2];
        ForceFields::MMFF::MMFFAngle sb_angle;
        // false: both constants are zero (RDKit adds no term either).
        if (!props.getMMFFStretchBendParams(work, i, j, k, type, sb, sb_bonds, sb_angle)) continue;
        const double scale = kMdyneA * kKjPerKcal * kAPerNm;
        stbn_force->addBond({particle(i), particle(j), particle(k)},
                            {sb_angle.theta0 * kRadPerDeg, scale * sb.kbaIJK, scale * sb.kbaKJI,
                             sb_bonds[0].r0 / kAPerNm, sb_bonds[1].r0 / kAPerNm});
        ++out.stretch_bends;
      }
    }
  }

  // Out-of-plane bend at trivalent centres J: E = 143.9325/2 koop chi^2 (rad) for each of the
  // three neighbours L leaving the plane of J and the other two (I, K). The Wilson angle chi
  // obeys sin chi = sin(angle K-J-L) sin(dihedral I-J-K-L).
  auto oop_force = std::make_unique<OpenMM::CustomCompoundBondForce>(
      4, "koop*asin(sin(angle(p3,p2,p4))*sin(dihedral(p1,p2,p3,p4)))^2");
  oop_force->addPerBondParameter("koop");  // kJ/mol/rad^2
  for (unsigned j = 0; j < n; ++j) {
    if (work.getAtomWithIdx(j)->getDegree() != 3) continue;
    const std::vector<unsigned> nb = neighbors(work, j);
    ForceFields::MMFF::MMFFOop p;
    // false: no parameters for this centre; RDKit leaves the term out (its comment: SURDOX02).
    if (!props.getMMFFOopBendParams(work, nb[0], j, nb[1], nb[2], p)) continue;
    const double koop = 0.5 * kMdyneA * p.koop * kKjPerKcal;
    // (I, K, L): each neighbour once out of the plane of the other two, as RDKit orders them.
    const unsigned planes[3][3] = {
        {nb[0], nb[1], nb[2]}, {nb[0], nb[2], nb[1]}, {nb[1], nb[2], nb[0]}};
    for (const auto& ikl : planes) {
      oop_force->addBond({particle(ikl[0]), particle(j), particle(ikl[1]), particle(ikl[2])},
                         {koop});
      ++out.oop;
    }
  }

  // Torsion: E = V1/2 (1 + cos phi) + V2/2 (1 - cos 2phi) + V3/2 (1 + cos 3phi), about every bond
  // between two non-terminal sp2/sp3 atoms that are in no triple bond (RDKit's torsion SMARTS
  // [!$(*#*)&!D1]~[!$(*#*)&!D1] and its hybridisation test), no three-membered-ring quartets.
  auto torsion_force = std::make_unique<OpenMM::PeriodicTorsionForce>();
  for (const RDKit::Bond* bond : work.bonds()) {
    const RDKit::Atom* aj = bond->getBeginAtom();
    const RDKit::Atom* ak = bond->getEndAtom();
    if (aj->getDegree() < 2 || ak->getDegree() < 2) continue;
    if (has_triple_bond(work, aj) || has_triple_bond(work, ak)) continue;
    if (!sp2_or_sp3(aj) || !sp2_or_sp3(ak)) continue;
    const unsigned j = aj->getIdx(), k = ak->getIdx();
    for (unsigned i : neighbors(work, j)) {
      if (i == k) continue;
      for (unsigned l : neighbors(work, k)) {
        if (l == j || l == i) continue;
        unsigned type = 0;
        ForceFields::MMFF::MMFFTor p;
        // false: V1 = V2 = V3 = 0 (RDKit adds no term either).
        if (!props.getMMFFTorsionParams(work, i, j, k, l, type, p)) continue;
        const int q[4] = {particle(i), particle(j), particle(k), particle(l)};
        const double v[3] = {p.V1, p.V2, p.V3};
        for (int period = 1; period <= 3; ++period) {
          if (v[period - 1] == 0.0) continue;
          const double phase = period == 2 ? kPi : 0.0;  // 1 - cos 2phi = 1 + cos(2phi - pi)
          torsion_force->addTorsion(q[0], q[1], q[2], q[3], period, phase,
                                    0.5 * v[period - 1] * kKjPerKcal);
        }
        ++out.torsions;
      }
    }
  }

  // Non-bonded pairs: 1-4 and farther, within one fragment. Buffered 14-7 vdW
  //   E = eps (1.07 R*/(r + 0.07 R*))^7 (1.12 R*^7/(r^7 + 0.12 R*^7) - 2)
  // and buffered Coulomb E = 332.0716 qi qj / (r + 0.05) (x0.75 for 1-4; r, R* in A).
  auto pair_force = std::make_unique<OpenMM::CustomBondForce>(
      "eps*(" + num(1 + kVdwB) + "*rs/(r+" + num(kVdwB) + "*rs))^7*(" + num(1 + kVdwC) +
      "*rs^7/(r^7+" + num(kVdwC) + "*rs^7)-2)+qq/(r+" + num(kEleBuffer / kAPerNm) + ")");
  pair_force->addPerBondParameter("rs");   // R*_ij, nm
  pair_force->addPerBondParameter("eps");  // kJ/mol
  pair_force->addPerBondParameter("qq");   // kJ/mol nm
  std::vector<int> fragment;
  RDKit::MolOps::getMolFrags(work, fragment);
  std::vector<std::vector<unsigned>> nbrs(n);
  for (unsigned i = 0; i < n; ++i) nbrs[i] = neighbors(work, i);
  auto bonded = [&](unsigned a, unsigned b) { return work.getBondBetweenAtoms(a, b) != nullptr; };
  for (unsigned i = 0; i < n; ++i) {
    for (unsigned j = i + 1; j < n; ++j) {
      if (fragment[i] != fragment[j] || bonded(i, j)) continue;
      bool one_three = false, one_four = false;
      for (unsigned a : nbrs[i]) {
        if (bonded(a, j)) one_three = true;
        for (unsigned b : nbrs[j]) {
          if (a != j && b != i && a != b && bonded(a, b)) one_four = true;
        }
      }
      if (one_three) continue;
      ForceFields::MMFF::MMFFVdWRijstarEps vdw;
      const bool has_vdw = props.getMMFFVdWParams(i, j, vdw);
      const bool has_ele = !ForceFields::MMFF::isDoubleZero(out.charges[i]) &&
                           !ForceFields::MMFF::isDoubleZero(out.charges[j]);
      if (!has_vdw && !has_ele) continue;
      const double rs = has_vdw ? vdw.R_ij_star / kAPerNm : 0.1;
      const double eps = has_vdw ? vdw.epsilon * kKjPerKcal : 0.0;
      const double qq = has_ele ? kCoulomb * kKjPerKcal / kAPerNm * out.charges[i] *
                                      out.charges[j] * (one_four ? kEle14Scale : 1.0)
                                : 0.0;
      pair_force->addBond(particle(i), particle(j), {rs, eps, qq});
      ++out.pairs;
      out.vdw_pairs += has_vdw;
      out.ele_pairs += has_ele;
    }
  }

  auto add = [&](auto force, int terms) {
    if (terms == 0) return;
    force->setForceGroup(force_group);
    system.addForce(force.release());
  };
  add(std::move(bond_force), out.bonds);
  add(std::move(angle_force), out.angles - out.linear_angles);
  add(std::move(linear_force), out.linear_angles);
  add(std::move(stbn_force), out.stretch_bends);
  add(std::move(oop_force), out.oop);
  const int torsion_terms = torsion_force->getNumTorsions();
  add(std::move(torsion_force), torsion_terms);
  add(std::move(pair_force), out.pairs);
  return out;
}

}  // namespace dit::docking
