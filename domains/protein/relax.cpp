// Restrained backbone relaxation with OpenMM (see relax.h for the terms and their constants).
#include "domains/protein/relax.h"

#include <dit/error.h>
#include <fmt/format.h>

#include <OpenMM.h>

#include "src/openmm_platform.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace dit::protein {
namespace {

constexpr double kRadPerDeg = kPi / 180.0;
constexpr double kNm = 0.1;  // nm per Angstrom

// Engh & Huber (1991) ideal angles, degrees (the bond lengths are in backbone.h).
constexpr double kNCaC = 111.2, kCaCN = 116.2, kCNCa = 121.7, kCaCO = 120.1, kOCN = 122.7,
                 kNCaCb = 110.5, kCCaCb = 110.1;
constexpr double kBreak = 4.2;    // CA-CA above this: no peptide terms
constexpr double kCisCaCa = 3.3;  // CA-CA below this: a cis peptide

enum Element { kN, kC, kO };
constexpr double kRadius[] = {1.55, 1.70, 1.52};  // Angstrom

struct Bond { int i, j; double r0; };
struct Angle { int i, j, k; double a0; };
struct Torsion { int i, j, k, l; bool cis; };
struct Improper { int i, j, k, l; };

struct Topology {
  std::vector<Vec3> pos;  // Angstrom
  std::vector<Element> element;
  std::vector<int> n, ca, c, o, cb;  // particle index per residue (cb: -1 where absent)
  std::vector<Bond> bonds;
  std::vector<Angle> angles;
  std::vector<Torsion> omegas, o_planar;  // CA-C-N-CA and O-C-N-CA
  std::vector<Improper> chirals;          // C-N-CA-CB
  std::vector<bool> bonded;               // per residue: peptide-bonded to the next one
};

double angle_rad(const Vec3& p, const Vec3& q, const Vec3& r) {
  Vec3 u = sub(p, q), v = sub(r, q);
  return std::acos(std::max(-1.0, std::min(1.0, dot(u, v) / (norm(u) * norm(v)))));
}
double dihedral_rad(const Vec3& p0, const Vec3& p1, const Vec3& p2, const Vec3& p3) {
  Vec3 b0 = sub(p0, p1), b1 = sub(p2, p1), b2 = sub(p3, p2);
  double l = norm(b1);
  b1 = {b1[0] / l, b1[1] / l, b1[2] / l};
  Vec3 v = sub(b0, {b1[0] * dot(b0, b1), b1[1] * dot(b0, b1), b1[2] * dot(b0, b1)});
  Vec3 w = sub(b2, {b1[0] * dot(b2, b1), b1[1] * dot(b2, b1), b1[2] * dot(b2, b1)});
  return std::atan2(dot(cross(b1, v), w), dot(v, w));
}

// Improper C-N-CA-CB of an ideal L residue: CB from the formula in rebuild.h on ideal N, CA, C.
double ideal_chiral_rad() {
  Vec3 n{0, 0, 0}, ca{kNCa, 0, 0};
  double t = kPi - kNCaC * kRadPerDeg;
  Vec3 c{ca[0] + kCaC * std::cos(t), kCaC * std::sin(t), 0};
  Vec3 b = sub(ca, n), cc = sub(c, ca), a = cross(b, cc);
  Vec3 cb{-0.58273431 * a[0] + 0.56802827 * b[0] - 0.54067466 * cc[0] + ca[0],
          -0.58273431 * a[1] + 0.56802827 * b[1] - 0.54067466 * cc[1] + ca[1],
          -0.58273431 * a[2] + 0.56802827 * b[2] - 0.54067466 * cc[2] + ca[2]};
  return dihedral_rad(c, n, ca, cb);
}


Topology build_topology(const Backbone& bb, bool continuous = false) {
  const size_t L = bb.size();
  auto check = [&](const std::vector<Vec3>& v, const char* field) {
    if (v.size() != L)
      throw Error("relax_backbone: backbone '" + bb.name + "' field " + field + " has " + std::to_string(v.size()) +
                  " entries, expected " + std::to_string(L));
  };
  check(bb.n, "n");
  check(bb.c, "c");
  check(bb.o, "o");
  if (!bb.cb.empty()) check(bb.cb, "cb");
  Topology t;
  auto add = [&](const Vec3& p, Element e, size_t res, const char* atom) {
    if (!finite(p))
      throw Error("relax_backbone: backbone '" + bb.name + "' residue " + std::to_string(res) + " atom " + atom +
                  " is not finite");
    t.pos.push_back(p);
    t.element.push_back(e);
    return static_cast<int>(t.pos.size() - 1);
  };
  for (size_t i = 0; i < L; ++i) {
    t.n.push_back(add(bb.n[i], kN, i, "N"));
    t.ca.push_back(add(bb.ca[i], kC, i, "CA"));
    t.c.push_back(add(bb.c[i], kC, i, "C"));
    t.o.push_back(add(bb.o[i], kO, i, "O"));
    bool glycine = i < bb.sequence.size() && bb.sequence[i] == 'G';
    t.cb.push_back(!bb.cb.empty() && !glycine && finite(bb.cb[i]) ? add(bb.cb[i], kC, i, "CB") : -1);
  }
  for (size_t i = 0; i < L; ++i) {
    t.bonds.push_back({t.n[i], t.ca[i], kNCa});
    t.bonds.push_back({t.ca[i], t.c[i], kCaC});
    t.bonds.push_back({t.c[i], t.o[i], kCO});
    t.angles.push_back({t.n[i], t.ca[i], t.c[i], kNCaC});
    t.angles.push_back({t.ca[i], t.c[i], t.o[i], kCaCO});
    if (t.cb[i] >= 0) {
      t.bonds.push_back({t.ca[i], t.cb[i], kCaCb});
      t.angles.push_back({t.n[i], t.ca[i], t.cb[i], kNCaCb});
      t.angles.push_back({t.c[i], t.ca[i], t.cb[i], kCCaCb});
      t.chirals.push_back({t.c[i], t.n[i], t.ca[i], t.cb[i]});
    }
    t.bonded.push_back(i + 1 < L && (continuous || norm(sub(bb.ca[i + 1], bb.ca[i])) <= kBreak));
    if (t.bonded.back()) {
      t.bonds.push_back({t.c[i], t.n[i + 1], kCN});
      t.angles.push_back({t.ca[i], t.c[i], t.n[i + 1], kCaCN});
      t.angles.push_back({t.c[i], t.n[i + 1], t.ca[i + 1], kCNCa});
      t.angles.push_back({t.o[i], t.c[i], t.n[i + 1], kOCN});
      // cis where the CA trace says so (cis ~2.9 A, trans ~3.8 A), whatever the input's N/C/O.
      // A continuous (generated) chain is all trans.
      bool cis = !continuous && norm(sub(bb.ca[i + 1], bb.ca[i])) < kCisCaCa;
      t.omegas.push_back({t.ca[i], t.c[i], t.n[i + 1], t.ca[i + 1], cis});
      t.o_planar.push_back({t.o[i], t.c[i], t.n[i + 1], t.ca[i + 1], cis});
    }
  }
  return t;
}

}  // namespace

GeometryDeviation geometry_deviation(const Backbone& bb) {
  Topology t = build_topology(bb);
  GeometryDeviation g;
  double bsum = 0, asum = 0;
  for (const auto& b : t.bonds) {
    double d = std::fabs(norm(sub(t.pos[b.i], t.pos[b.j])) - b.r0);
    g.bond_max = std::max(g.bond_max, d);
    bsum += d * d;
  }
  for (const auto& a : t.angles) {
    double d = std::fabs(angle_rad(t.pos[a.i], t.pos[a.j], t.pos[a.k]) / kRadPerDeg - a.a0);
    g.angle_max = std::max(g.angle_max, d);
    asum += d * d;
  }
  for (const auto& w : t.omegas) {
    double om = std::fabs(dihedral_rad(t.pos[w.i], t.pos[w.j], t.pos[w.k], t.pos[w.l])) / kRadPerDeg;
    g.omega_max = std::max(g.omega_max, w.cis ? om : 180.0 - om);
  }
  for (const auto& c : t.chirals)
    if (dihedral_rad(t.pos[c.i], t.pos[c.j], t.pos[c.k], t.pos[c.l]) * ideal_chiral_rad() < 0) ++g.d_residues;
  g.bonds = static_cast<int>(t.bonds.size());
  g.angles = static_cast<int>(t.angles.size());
  g.bond_rms = g.bonds ? std::sqrt(bsum / g.bonds) : 0;
  g.angle_rms = g.angles ? std::sqrt(asum / g.angles) : 0;
  return g;
}

RelaxReport relax_backbone(Backbone& bb, const RelaxOptions& opt) {
  Topology t = build_topology(bb, opt.continuous);
  RelaxReport report;
  report.particles = static_cast<int>(t.pos.size());
  if (t.pos.empty()) return report;

  OpenMM::System system;
  for (Element e : t.element) system.addParticle(e == kN ? 14.007 : e == kO ? 15.999 : 12.011);

  auto* bonds = new OpenMM::HarmonicBondForce();
  system.addForce(bonds);  // the System owns its forces
  std::vector<std::pair<int, int>> bond_pairs;
  for (const auto& b : t.bonds) {
    bonds->addBond(b.i, b.j, b.r0 * kNm, opt.bond_k);
    bond_pairs.emplace_back(b.i, b.j);
  }
  auto* angles = new OpenMM::HarmonicAngleForce();
  system.addForce(angles);
  for (const auto& a : t.angles) angles->addAngle(a.i, a.j, a.k, a.a0 * kRadPerDeg, opt.angle_k);

  // E = k (1 + cos(phi - phase)): phase 0 -> minimum at 180 deg, phase pi -> minimum at 0.
  auto* torsions = new OpenMM::PeriodicTorsionForce();
  system.addForce(torsions);
  for (const auto& w : t.omegas) {
    torsions->addTorsion(w.i, w.j, w.k, w.l, 1, w.cis ? kPi : 0.0, opt.omega_k);
    report.cis_peptides += w.cis ? 1 : 0;
  }
  for (const auto& w : t.o_planar) torsions->addTorsion(w.i, w.j, w.k, w.l, 1, w.cis ? 0.0 : kPi, opt.omega_k);

  auto* chiral = new OpenMM::CustomTorsionForce("0.5*kchi*dt^2; dt = min(d, 2*pi - d); d = abs(theta - theta0); pi = 3.14159265358979");
  system.addForce(chiral);
  chiral->addGlobalParameter("kchi", opt.chiral_k);
  chiral->addGlobalParameter("theta0", ideal_chiral_rad());
  for (const auto& c : t.chirals) chiral->addTorsion(c.i, c.j, c.k, c.l, {});

  auto* rep = new OpenMM::CustomNonbondedForce("krep*step(d)*d^2; d = sclash*(rad1 + rad2) - r");
  system.addForce(rep);
  rep->addGlobalParameter("krep", opt.repulsion_k);
  rep->addGlobalParameter("sclash", opt.clash_scale);
  rep->addPerParticleParameter("rad");
  for (Element e : t.element) rep->addParticle({kRadius[e] * kNm});
  rep->createExclusionsFromBonds(bond_pairs, 2);  // 1-2 and 1-3 pairs
  rep->setNonbondedMethod(OpenMM::CustomNonbondedForce::CutoffNonPeriodic);
  rep->setCutoffDistance(opt.clash_scale * 2 * kRadius[kC] * kNm + 0.01);

  auto* restraint = new OpenMM::CustomExternalForce("0.5*kca*((x-x0)^2 + (y-y0)^2 + (z-z0)^2)");
  system.addForce(restraint);
  restraint->addGlobalParameter("kca", opt.ca_restraint);
  restraint->addPerParticleParameter("x0");
  restraint->addPerParticleParameter("y0");
  restraint->addPerParticleParameter("z0");
  std::vector<OpenMM::Vec3> positions;
  for (const auto& p : t.pos) positions.emplace_back(p[0] * kNm, p[1] * kNm, p[2] * kNm);
  for (int i : t.ca) restraint->addParticle(i, {positions[i][0], positions[i][1], positions[i][2]});

  if (opt.rama != nullptr && opt.rama_k > 0) {
    const auto& m = *opt.rama;
    const double first = m.lo0 + 0.5 * m.width;  // centre of bin 0: OpenMM's grid starts at 0
    if (m.n0 != m.n1 || !m.wrap0 || !m.wrap1 || std::fabs(m.width * m.n0 - 360.0) > 1e-9 ||
        std::fabs(std::remainder(first, m.width)) > 1e-9)
      throw Error(fmt::format("relax_backbone: Ramachandran table '{}': expected a square periodic map over "
                              "360 deg with a bin centre at 0 deg",
                              m.name));
    const int size = static_cast<int>(m.n0);
    const auto shift = static_cast<int>(std::lround(first / m.width));  // bin k is centred at (k + shift) w
    auto e = m.energy.contiguous();
    const double* v = e.data_ptr<double>();
    constexpr double kT = 2.494;  // kJ/mol at 300 K
    auto* cmap = new OpenMM::CMAPTorsionForce();
    system.addForce(cmap);
    std::vector<double> grid(static_cast<size_t>(size) * size);
    for (int i = 0; i < size; ++i)
      for (int j = 0; j < size; ++j) {
        const int bi = ((i - shift) % size + size) % size, bj = ((j - shift) % size + size) % size;
        grid[static_cast<size_t>(i + size * j)] = opt.rama_k * kT * v[bi * size + bj];  // OpenMM: [phi + size psi]
      }
    const int map = cmap->addMap(size, grid);
    for (size_t r = 1; r + 1 < t.n.size(); ++r) {
      if (!t.bonded[r - 1] || !t.bonded[r]) continue;
      cmap->addTorsion(map, t.c[r - 1], t.n[r], t.ca[r], t.c[r], t.n[r], t.ca[r], t.c[r], t.n[r + 1]);
    }
  }

  if (!opt.rama_targets.empty() || !opt.planar_peptides.empty()) {
    auto* targets = new OpenMM::CustomTorsionForce(
        "0.5*ktarget*dt^2; dt = min(d, 2*pi - d); d = abs(theta - theta0); pi = 3.14159265358979");
    system.addForce(targets);
    targets->addGlobalParameter("ktarget", opt.target_k);
    targets->addPerTorsionParameter("theta0");
    for (const auto& g : opt.rama_targets) {
      const size_t r = g.residue;
      if (r < 1 || r + 1 >= bb.size() || !t.bonded[r - 1] || !t.bonded[r])
        throw Error(fmt::format("relax_backbone: backbone '{}': RelaxOptions.rama_targets residue {} has no phi and psi "
                                "(needs peptide-bonded neighbours on both sides)",
                                bb.name, r));
      targets->addTorsion(t.c[r - 1], t.n[r], t.ca[r], t.c[r], {g.phi * kRadPerDeg});
      targets->addTorsion(t.n[r], t.ca[r], t.c[r], t.n[r + 1], {g.psi * kRadPerDeg});
    }
    for (size_t i : opt.planar_peptides) {
      if (i + 1 >= bb.size() || !t.bonded[i])
        throw Error(fmt::format("relax_backbone: backbone '{}': RelaxOptions.planar_peptides {} joins no bonded residues",
                                bb.name, i));
      const bool cis = !opt.continuous && norm(sub(bb.ca[i + 1], bb.ca[i])) < kCisCaCa;
      targets->addTorsion(t.ca[i], t.c[i], t.n[i + 1], t.ca[i + 1], {cis ? 0.0 : kPi});
    }
  }

  try {
    OpenMM::Platform& platform = dit::openmm::platform(opt.platform, "relax_backbone: RelaxOptions.platform");
    report.platform = platform.getName();
    std::map<std::string, std::string> props;
    if (report.platform == "CPU" && opt.threads > 0) props["Threads"] = std::to_string(opt.threads);
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(system, integrator, platform, props);
    context.setPositions(positions);
    auto rms_force = [&](const OpenMM::State& s) {
      double sum = 0;
      for (const auto& f : s.getForces()) sum += f.dot(f);
      return std::sqrt(sum / (3.0 * s.getForces().size()));
    };
    OpenMM::State s0 = context.getState(OpenMM::State::Energy);
    report.energy_before = s0.getPotentialEnergy();
    const int chunk = 100;
    double last = report.energy_before;
    while (report.iterations < opt.max_iterations) {
      int steps = std::min(chunk, opt.max_iterations - report.iterations);
      OpenMM::LocalEnergyMinimizer::minimize(context, opt.tolerance, steps);
      report.iterations += steps;
      OpenMM::State s = context.getState(OpenMM::State::Energy | OpenMM::State::Forces);
      report.rms_force_after = rms_force(s);
      double e = s.getPotentialEnergy();
      bool stalled = last - e < 1e-6 * std::max(1.0, std::fabs(e));
      last = e;
      if (report.rms_force_after <= opt.tolerance || stalled) break;
    }
    OpenMM::State s1 = context.getState(OpenMM::State::Energy | OpenMM::State::Positions);
    report.energy_after = s1.getPotentialEnergy();
    const auto& out = s1.getPositions();
    auto get = [&](int i) { return Vec3{out[i][0] / kNm, out[i][1] / kNm, out[i][2] / kNm}; };
    double sum = 0;
    for (size_t r = 0; r < bb.size(); ++r) {
      Vec3 moved = get(t.ca[r]);
      Vec3 d = sub(moved, bb.ca[r]);
      sum += dot(d, d);
      bb.n[r] = get(t.n[r]);
      bb.ca[r] = moved;
      bb.c[r] = get(t.c[r]);
      bb.o[r] = get(t.o[r]);
      if (t.cb[r] >= 0) bb.cb[r] = get(t.cb[r]);
    }
    report.ca_rmsd = std::sqrt(sum / static_cast<double>(bb.size()));
  } catch (const OpenMM::OpenMMException& e) {
    throw Error("relax_backbone: backbone '" + bb.name + "': OpenMM: " + e.what());
  }
  return report;
}

}  // namespace dit::protein
