// OpenMM refinement of docked poses (terms and units in refine.h).
#include "domains/docking/refine.h"

#include <GraphMol/ForceFieldHelpers/UFF/AtomTyper.h>
#include <GraphMol/PeriodicTable.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <OpenMM.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "domains/docking/mmff_openmm.h"
#include "domains/docking/pose.h"
#include "src/openmm_platform.h"

namespace dit::docking {
namespace {

constexpr double kNm = 0.1;            // nm per A
constexpr double kKcal = 4.184;        // kJ per kcal
constexpr double kCoulomb = 138.935456;  // kJ mol^-1 nm e^-2

struct PocketParam {
  const char* residue;
  const char* atom;
  double charge, sigma, epsilon;  // e, nm, kJ/mol
};

// Amber ff14SB, united atoms: generated at build time (scripts/docking/make-pocket-params.py).
constexpr PocketParam kPocketTable[] = {
#include "docking/pocket_ff14sb.inc"
};

const std::unordered_map<std::string, const PocketParam*>& pocket_index() {
  static const auto index = [] {
    std::unordered_map<std::string, const PocketParam*> m;
    for (const auto& p : kPocketTable) m.emplace(std::string(p.residue) + ':' + p.atom, &p);
    return m;
  }();
  return index;
}

const PocketParam* find_param(const std::string& residue, const std::string& atom) {
  const auto& index = pocket_index();
  auto it = index.find(residue + ':' + atom);
  return it == index.end() ? nullptr : it->second;
}

// PDB residue names to ff14SB templates: histidine as HIE (N-epsilon protonated, Amber's
// default), CHARMM's histidine names, selenomethionine as methionine.
std::string template_name(const std::string& residue) {
  static const std::unordered_map<std::string, std::string> alias = {
      {"HIS", "HIE"}, {"HSD", "HID"}, {"HSE", "HIE"}, {"HSP", "HIP"}, {"MSE", "MET"}};
  auto it = alias.find(residue);
  return it == alias.end() ? residue : it->second;
}

struct AtomParams {
  double charge = 0, sigma = 0, epsilon = 0;  // e, nm, kJ/mol
};

// Element defaults for atoms no template covers (cofactors, modified residues, ions): ff14SB's
// and GAFF's common types, charge 0; monatomic ions get their formal charge and a small radius.
AtomParams element_defaults(int z, bool ion) {
  switch (z) {
    case 6: return {0, 0.339967, 0.359824};
    case 7: return {0, 0.325000, 0.711280};
    case 8: return {0, 0.295992, 0.878640};
    case 9: return {0, 0.311815, 0.255224};
    case 15: return {0, 0.374177, 0.836800};
    case 16: return {0, 0.356359, 1.046000};
    case 17: return {ion ? -1.0 : 0.0, 0.347094, 1.108760};
    case 35: return {0, 0.395559, 1.338880};
    case 53: return {0, 0.418722, 1.673600};
    case 11: case 19: return {1.0, 0.25, 0.4};
    case 12: case 20: case 25: case 26: case 27: case 28: case 29: case 30:
      return {ion ? 2.0 : 0.0, 0.20, 0.05};
    default: return {0, 0.34, 0.4};
  }
}

AtomParams pocket_params(const ReceptorAtom& a, bool& templated) {
  templated = false;
  if (!a.hetero) {
    const std::string res = template_name(a.residue);
    // Terminal atoms (OXT, the N-terminal N with three hydrogens) come from the C- and
    // N-terminal templates; others from the residue's own template first.
    for (const std::string& t : {a.name == "OXT" ? "C" + res : res, "N" + res, "C" + res})
      if (const PocketParam* p = find_param(t, a.name)) {
        templated = true;
        return {p->charge, p->sigma, p->epsilon};
      }
  }
  // A monatomic hetero group (ZN, MG, NA, CL, ...) is an ion.
  const bool ion = a.hetero && a.residue.size() <= 2;
  return element_defaults(a.atomic_number, ion);
}

}  // namespace

int pocket_table_size() { return static_cast<int>(std::size(kPocketTable)); }

bool pocket_table_lookup(const std::string& residue, const std::string& atom, double& charge,
                         double& sigma, double& epsilon) {
  const PocketParam* p = find_param(residue, atom);
  if (!p) return false;
  charge = p->charge, sigma = p->sigma, epsilon = p->epsilon;
  return true;
}

struct PoseRefiner::Impl {
  RefineOptions options;
  std::string source, platform_name;
  const RDKit::ROMol* ligand = nullptr;
  int num_ligand = 0, num_pocket = 0, fallback = 0;
  std::vector<OpenMM::Vec3> pocket_positions;
  std::vector<int> heavy;  // ligand heavy atoms (restrained)
  OpenMM::CustomExternalForce* restraint = nullptr;  // owned by the system
  std::unique_ptr<OpenMM::System> system;
  std::unique_ptr<OpenMM::VerletIntegrator> integrator;
  std::unique_ptr<OpenMM::Context> context;

  double group_energy(int group) const {
    return context->getState(OpenMM::State::Energy, false, 1 << group).getPotentialEnergy() / kKcal;
  }
};

PoseRefiner::PoseRefiner(const Receptor& pocket, const RDKit::ROMol& ligand,
                         const RefineOptions& options, const std::string& source)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.options = options, m.source = source, m.ligand = &ligand;
  m.num_ligand = static_cast<int>(ligand.getNumAtoms());
  m.system = std::make_unique<OpenMM::System>();
  for (const auto* atom : ligand.atoms()) {
    m.system->addParticle(atom->getMass());
    if (atom->getAtomicNum() != 1) m.heavy.push_back(static_cast<int>(atom->getIdx()));
  }
  // Group 0: the ligand's MMFF94 energy.
  const MmffForces mmff = add_mmff_forces(*m.system, ligand, 0, 0, source);

  // Group 1: ligand-pocket Lennard-Jones + Coulomb (eps(r) = dielectric * r[A]).
  auto* inter = new OpenMM::CustomNonbondedForce(
      "lambda*(4*eps*(s6*s6-s6) + kc*q1*q2/(diel*r*r));"
      "s6=(sig/r)^6; sig=0.5*(sig1+sig2); eps=sqrt(eps1*eps2)");
  inter->addGlobalParameter("lambda", 1.0);
  inter->addGlobalParameter("kc", kCoulomb);
  inter->addGlobalParameter("diel", options.dielectric / kNm);  // eps(r) = diel * r[nm]
  inter->addPerParticleParameter("q");
  inter->addPerParticleParameter("sig");
  inter->addPerParticleParameter("eps");
  inter->setNonbondedMethod(OpenMM::CustomNonbondedForce::CutoffNonPeriodic);
  inter->setCutoffDistance(options.cutoff * kNm);
  inter->setUseSwitchingFunction(true);
  inter->setSwitchingDistance(std::max(0.5 * options.cutoff, options.cutoff - 1.0) * kNm);
  inter->setForceGroup(1);

  // Ligand atoms: MMFF charges, UFF's vdW distance x1 (r_min) and depth D1; hydrogens on N, O
  // and S get Amber's polar-hydrogen radius so that H-bonds are not pushed apart.
  const auto uff = RDKit::UFF::getAtomTypes(ligand);
  std::set<int> ligand_set, pocket_set;
  for (const auto* atom : ligand.atoms()) {
    const auto i = atom->getIdx();
    const auto* p = i < uff.first.size() ? uff.first[i] : nullptr;
    double sigma = 0.34, eps = 0.4;  // nm, kJ/mol: when UFF has no type
    if (p) sigma = p->x1 * kNm / std::pow(2.0, 1.0 / 6.0), eps = p->D1 * kKcal;
    if (atom->getAtomicNum() == 1) {
      for (const auto* nb : ligand.atomNeighbors(atom))
        if (nb->getAtomicNum() == 7 || nb->getAtomicNum() == 8 || nb->getAtomicNum() == 16)
          sigma = 0.106908, eps = 0.0656888;  // ff14SB protein-H
    }
    inter->addParticle({mmff.charges[i], sigma, eps});
    ligand_set.insert(static_cast<int>(i));
  }
  for (const auto& a : pocket.atoms) {
    if (a.atomic_number == 1) continue;
    bool templated = false;
    const AtomParams p = pocket_params(a, templated);
    if (!templated) ++m.fallback;
    const int index = m.system->addParticle(0.0);  // fixed
    inter->addParticle({p.charge, p.sigma, p.epsilon});
    pocket_set.insert(index);
    m.pocket_positions.emplace_back(a.position[0] * kNm, a.position[1] * kNm, a.position[2] * kNm);
  }
  m.num_pocket = static_cast<int>(m.pocket_positions.size());
  if (m.num_pocket == 0) throw Error(fmt::format("{}: refinement: the pocket has no heavy atom", source));
  inter->addInteractionGroup(ligand_set, pocket_set);
  m.system->addForce(inter);

  // Group 2: the positional restraint on the ligand's heavy atoms.
  m.restraint = new OpenMM::CustomExternalForce("0.5*k*((x-x0)^2+(y-y0)^2+(z-z0)^2)");
  m.restraint->addGlobalParameter("k", options.restraint * kKcal / (kNm * kNm));
  m.restraint->addPerParticleParameter("x0");
  m.restraint->addPerParticleParameter("y0");
  m.restraint->addPerParticleParameter("z0");
  for (int i : m.heavy) m.restraint->addParticle(i, {0.0, 0.0, 0.0});
  m.restraint->setForceGroup(2);
  m.system->addForce(m.restraint);

  try {
    OpenMM::Platform& platform = dit::openmm::platform(options.platform, "refine: platform");
    m.platform_name = platform.getName();
    std::map<std::string, std::string> props;
    if (m.platform_name == "CPU" && options.threads > 0) props["Threads"] = std::to_string(options.threads);
    m.integrator = std::make_unique<OpenMM::VerletIntegrator>(0.001);
    m.context = std::make_unique<OpenMM::Context>(*m.system, *m.integrator, platform, props);
  } catch (const OpenMM::OpenMMException& e) {
    throw Error(fmt::format("{}: refinement: OpenMM: {}", source, e.what()));
  }
}

PoseRefiner::~PoseRefiner() = default;

const std::string& PoseRefiner::platform() const { return impl_->platform_name; }
int PoseRefiner::pocket_atoms() const { return impl_->num_pocket; }
int PoseRefiner::fallback_atoms() const { return impl_->fallback; }

RefinedPose PoseRefiner::refine(const std::vector<Vec3>& coordinates) {
  auto& m = *impl_;
  if (static_cast<int>(coordinates.size()) != m.num_ligand)
    throw Error(fmt::format("{}: refinement: pose has {} atoms, the ligand {}", m.source,
                            coordinates.size(), m.num_ligand));
  std::vector<OpenMM::Vec3> positions;
  positions.reserve(m.num_ligand + m.num_pocket);
  for (const auto& c : coordinates) {
    for (double v : c)
      if (!std::isfinite(v)) throw Error(fmt::format("{}: refinement: a pose coordinate is not finite", m.source));
    positions.emplace_back(c[0] * kNm, c[1] * kNm, c[2] * kNm);
  }
  positions.insert(positions.end(), m.pocket_positions.begin(), m.pocket_positions.end());
  for (size_t r = 0; r < m.heavy.size(); ++r) {
    const auto& c = coordinates[m.heavy[r]];
    m.restraint->setParticleParameters(static_cast<int>(r), m.heavy[r], {c[0] * kNm, c[1] * kNm, c[2] * kNm});
  }
  RefinedPose out;
  try {
    m.restraint->updateParametersInContext(*m.context);
    m.context->setParameter("lambda", 1.0);
    m.context->setParameter("k", m.options.restraint * kKcal / (kNm * kNm));
    m.context->setPositions(positions);
    OpenMM::LocalEnergyMinimizer::minimize(*m.context, m.options.tolerance, m.options.max_iterations);
    const auto state = m.context->getState(OpenMM::State::Positions);
    const auto& refined = state.getPositions();
    out.coordinates.resize(m.num_ligand);
    for (int i = 0; i < m.num_ligand; ++i)
      out.coordinates[i] = {refined[i][0] / kNm, refined[i][1] / kNm, refined[i][2] / kNm};
    out.interaction = m.group_energy(1);
    out.intra = m.group_energy(0);
    // Strain: relax the free ligand from the refined pose (pocket and restraint off).
    m.context->setParameter("lambda", 0.0);
    m.context->setParameter("k", 0.0);
    OpenMM::LocalEnergyMinimizer::minimize(*m.context, m.options.tolerance, m.options.max_iterations);
    out.strain = out.intra - m.group_energy(0);
    m.context->setParameter("lambda", 1.0);
  } catch (const OpenMM::OpenMMException& e) {
    throw Error(fmt::format("{}: refinement: OpenMM: {}", m.source, e.what()));
  }
  for (const auto& c : out.coordinates)
    for (double v : c)
      if (!std::isfinite(v)) throw Error(fmt::format("{}: refinement diverged (non-finite coordinates)", m.source));
  out.shift = rmsd_over(m.heavy, coordinates, out.coordinates);
  return out;
}

}  // namespace dit::docking
