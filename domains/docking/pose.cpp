// Torsion-tree ligands and rigid-body + torsion poses (see pose.h).
#include "domains/docking/pose.h"

#include <GraphMol/MolOps.h>
#include <GraphMol/RingInfo.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <cmath>
#include <deque>
#include <numeric>

namespace dit::docking {

namespace {
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot3(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 normalized(const Vec3& v) {
  const double n = std::sqrt(dot3(v, v));
  return n > 0 ? Vec3{v[0] / n, v[1] / n, v[2] / n} : Vec3{1, 0, 0};
}
// Rodrigues: v turned by `angle` (right hand) about the unit axis u.
Vec3 rotate_about(const Vec3& v, const Vec3& u, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  const Vec3 uxv = cross(u, v);
  const double uv = dot3(u, v);
  return {v[0] * c + uxv[0] * s + u[0] * uv * (1 - c), v[1] * c + uxv[1] * s + u[1] * uv * (1 - c),
          v[2] * c + uxv[2] * s + u[2] * uv * (1 - c)};
}
}  // namespace

// ---- quaternions ------------------------------------------------------------------------------
Quaternion Quaternion::from_rotation_vector(const Vec3& v) {
  const double angle = std::sqrt(dot3(v, v));
  if (angle < 1e-12) return {1, 0.5 * v[0], 0.5 * v[1], 0.5 * v[2]};
  const double s = std::sin(0.5 * angle) / angle;
  return {std::cos(0.5 * angle), v[0] * s, v[1] * s, v[2] * s};
}
Quaternion Quaternion::random(std::mt19937_64& rng) {
  std::normal_distribution<double> n(0, 1);
  Quaternion q{n(rng), n(rng), n(rng), n(rng)};
  q.normalize();
  return q;
}
Quaternion Quaternion::operator*(const Quaternion& o) const {
  return {w * o.w - x * o.x - y * o.y - z * o.z, w * o.x + x * o.w + y * o.z - z * o.y,
          w * o.y - x * o.z + y * o.w + z * o.x, w * o.z + x * o.y - y * o.x + z * o.w};
}
void Quaternion::normalize() {
  const double n = std::sqrt(w * w + x * x + y * y + z * z);
  w /= n, x /= n, y /= n, z /= n;
}
Vec3 Quaternion::rotate(const Vec3& v) const {
  // v + 2 q_v x (q_v x v + w v)
  const Vec3 qv{x, y, z};
  const Vec3 t = add(cross(qv, v), {w * v[0], w * v[1], w * v[2]});
  const Vec3 c = cross(qv, t);
  return {v[0] + 2 * c[0], v[1] + 2 * c[1], v[2] + 2 * c[2]};
}

// ---- pose tangent vectors -----------------------------------------------------------------------
double PoseGradient::dot(const PoseGradient& o) const {
  double s = dot3(position, o.position) + dot3(orientation, o.orientation);
  for (size_t i = 0; i < torsions.size(); ++i) s += torsions[i] * o.torsions[i];
  return s;
}
void PoseGradient::axpy(double a, const PoseGradient& o) {
  for (int k = 0; k < 3; ++k) {
    position[k] += a * o.position[k];
    orientation[k] += a * o.orientation[k];
  }
  for (size_t i = 0; i < torsions.size(); ++i) torsions[i] += a * o.torsions[i];
}
void PoseGradient::scale(double a) {
  for (int k = 0; k < 3; ++k) {
    position[k] *= a;
    orientation[k] *= a;
  }
  for (double& t : torsions) t *= a;
}
Pose advance(const Pose& pose, const PoseGradient& step, double alpha) {
  Pose out = pose;
  for (int k = 0; k < 3; ++k) out.position[k] += alpha * step.position[k];
  const Vec3 w{alpha * step.orientation[0], alpha * step.orientation[1], alpha * step.orientation[2]};
  out.orientation = Quaternion::from_rotation_vector(w) * pose.orientation;
  out.orientation.normalize();
  for (size_t i = 0; i < out.torsions.size(); ++i) out.torsions[i] += alpha * step.torsions[i];
  return out;
}

// ---- topology ---------------------------------------------------------------------------------
XsType ligand_xs_type(const RDKit::Atom& atom) {
  int hydrogens = 0, degree = 0;
  bool hetero_neighbour = false;
  for (const auto* n : atom.getOwningMol().atomNeighbors(&atom)) {
    ++degree;
    if (n->getAtomicNum() == 1) ++hydrogens;
    else if (n->getAtomicNum() != 6) hetero_neighbour = true;
  }
  hydrogens += static_cast<int>(atom.getTotalNumHs());  // implicit ones, if any are left
  switch (atom.getAtomicNum()) {
    case 6: return hetero_neighbour ? XsType::C_P : XsType::C_H;
    case 7: {
      const bool donor = hydrogens > 0;
      // A lone pair free to accept: anionic N (deprotonated sulfonamide, tetrazolate), or no H,
      // not cationic and fewer than 3 neighbours (pyridine, imine, nitrile). Amide and aniline
      // N (3 neighbours) are not acceptors, as in AutoDock.
      const bool acceptor = atom.getFormalCharge() < 0 ||
                            (hydrogens == 0 && atom.getFormalCharge() == 0 && degree < 3);
      return donor ? (acceptor ? XsType::N_DA : XsType::N_D) : (acceptor ? XsType::N_A : XsType::N_P);
    }
    case 8: return hydrogens > 0 ? XsType::O_DA : XsType::O_A;
    case 9: return XsType::F_H;
    case 15: return XsType::P_P;
    case 16: return XsType::S_P;
    case 17: return XsType::Cl_H;
    case 35: return XsType::Br_H;
    case 53: return XsType::I_H;
    default: return XsType::Other;
  }
}

namespace {
bool is_rotatable(const RDKit::ROMol& mol, const RDKit::Bond& bond) {
  if (bond.getBondType() != RDKit::Bond::SINGLE) return false;
  if (mol.getRingInfo()->numBondRings(bond.getIdx()) > 0) return false;
  const RDKit::Atom* ends[2] = {bond.getBeginAtom(), bond.getEndAtom()};
  for (const auto* a : ends) {
    if (a->getAtomicNum() == 1) return false;
    int heavy = 0;
    for (const auto* n : mol.atomNeighbors(a)) heavy += n->getAtomicNum() > 1;
    if (heavy < 2) return false;
    if (a->getHybridization() == RDKit::Atom::SP) return false;  // linear: turning does nothing
  }
  // Amide C(=O)-N: planar, kept rigid (AutoDock's default).
  for (int k = 0; k < 2; ++k) {
    const auto* c = ends[k];
    const auto* n = ends[1 - k];
    if (c->getAtomicNum() != 6 || n->getAtomicNum() != 7) continue;
    for (const auto* b : mol.atomBonds(c))
      if (b->getBondType() == RDKit::Bond::DOUBLE && b->getOtherAtom(c)->getAtomicNum() == 8)
        return false;
  }
  return true;
}
}  // namespace

LigandTopology build_topology(const RDKit::ROMol& ligand, int max_rotatable) {
  if (ligand.getNumConformers() == 0) throw Error("ligand topology: the ligand has no conformer");
  LigandTopology topo;
  const int n = static_cast<int>(ligand.getNumAtoms());
  topo.num_atoms = n;
  const auto& conf = ligand.getConformer();
  for (int i = 0; i < n; ++i) {
    const auto& p = conf.getAtomPos(i);
    topo.reference.push_back({p.x, p.y, p.z});
  }
  for (const auto* atom : ligand.atoms()) {
    if (atom->getAtomicNum() == 1) continue;
    topo.heavy.push_back(static_cast<int>(atom->getIdx()));
    topo.heavy_type.push_back(ligand_xs_type(*atom));
  }
  for (int i : topo.heavy)
    for (int k = 0; k < 3; ++k) topo.centroid[k] += topo.reference[i][k] / topo.heavy.size();

  // Root: the heavy atom whose farthest atom (in bonds) is nearest, so moving sides are small.
  const double* dist = RDKit::MolOps::getDistanceMat(ligand);
  int root = topo.heavy.front();
  double best = 1e9;
  for (int i : topo.heavy) {
    double far = 0;
    for (int j : topo.heavy) far = std::max(far, dist[i * n + j]);
    if (far < best) best = far, root = i;
  }

  std::vector<const RDKit::Bond*> rotatable;
  for (const auto* bond : ligand.bonds())
    if (is_rotatable(ligand, *bond)) rotatable.push_back(bond);
  if (static_cast<int>(rotatable.size()) > max_rotatable)
    throw Error(fmt::format("ligand has {} rotatable bonds, more than the limit of {}",
                            rotatable.size(), max_rotatable));
  for (const auto* bond : rotatable) {
    int a = static_cast<int>(bond->getBeginAtomIdx()), b = static_cast<int>(bond->getEndAtomIdx());
    if (dist[root * n + a] > dist[root * n + b]) std::swap(a, b);  // b: away from the root
    Torsion t{a, b, {}};
    std::vector<char> seen(n, 0);
    seen[a] = seen[b] = 1;
    std::deque<int> queue{b};
    while (!queue.empty()) {
      const int u = queue.front();
      queue.pop_front();
      t.moving.push_back(u);
      for (const auto* nb : ligand.atomNeighbors(ligand.getAtomWithIdx(u))) {
        const int v = static_cast<int>(nb->getIdx());
        if (!seen[v]) seen[v] = 1, queue.push_back(v);
      }
    }
    topo.torsions.push_back(std::move(t));
  }
  // Ancestors first (nearer the root), so each axis is placed before its subtree turns.
  std::stable_sort(topo.torsions.begin(), topo.torsions.end(), [&](const Torsion& x, const Torsion& y) {
    return dist[root * n + x.from] < dist[root * n + y.from];
  });

  // Rigid fragments: components without the rotatable bonds. Pairs inside one never move.
  std::vector<int> fragment(n, -1);
  std::vector<std::pair<int, int>> cut;
  for (const auto* b : rotatable) cut.emplace_back(b->getBeginAtomIdx(), b->getEndAtomIdx());
  auto is_cut = [&](int u, int v) {
    for (auto& [p, q] : cut)
      if ((p == u && q == v) || (p == v && q == u)) return true;
    return false;
  };
  int fragments = 0;
  for (int s = 0; s < n; ++s) {
    if (fragment[s] >= 0) continue;
    std::deque<int> queue{s};
    fragment[s] = fragments;
    while (!queue.empty()) {
      const int u = queue.front();
      queue.pop_front();
      for (const auto* nb : ligand.atomNeighbors(ligand.getAtomWithIdx(u))) {
        const int v = static_cast<int>(nb->getIdx());
        if (fragment[v] < 0 && !is_cut(u, v)) fragment[v] = fragments, queue.push_back(v);
      }
    }
    ++fragments;
  }
  for (size_t i = 0; i < topo.heavy.size(); ++i)
    for (size_t j = i + 1; j < topo.heavy.size(); ++j) {
      const int a = topo.heavy[i], b = topo.heavy[j];
      if (fragment[a] != fragment[b] && dist[a * n + b] > 3)
        topo.intra_pairs.emplace_back(static_cast<int>(i), static_cast<int>(j));
    }
  return topo;
}

Pose LigandTopology::identity_pose() const {
  Pose pose;
  pose.position = centroid;
  pose.torsions.assign(torsions.size(), 0.0);
  return pose;
}

std::vector<Vec3> LigandTopology::coordinates(const Pose& pose) const {
  std::vector<Vec3> x = reference;
  for (size_t i = 0; i < torsions.size(); ++i) {
    const double angle = pose.torsions[i];
    if (angle == 0) continue;
    const auto& t = torsions[i];
    const Vec3 origin = x[t.to];
    const Vec3 u = normalized(sub(x[t.to], x[t.from]));
    for (int j : t.moving) x[j] = add(origin, rotate_about(sub(x[j], origin), u, angle));
  }
  for (auto& p : x) p = add(pose.orientation.rotate(sub(p, centroid)), pose.position);
  return x;
}

PoseGradient LigandTopology::pose_gradient(const Pose& pose, const std::vector<Vec3>& x,
                                           const std::vector<Vec3>& g) const {
  PoseGradient out;
  out.torsions.assign(torsions.size(), 0.0);
  for (int j = 0; j < num_atoms; ++j) {
    out.position = add(out.position, g[j]);
    out.orientation = add(out.orientation, cross(sub(x[j], pose.position), g[j]));
  }
  for (size_t i = 0; i < torsions.size(); ++i) {
    const auto& t = torsions[i];
    const Vec3 u = normalized(sub(x[t.to], x[t.from]));
    double s = 0;
    for (int j : t.moving) s += dot3(cross(u, sub(x[j], x[t.to])), g[j]);
    out.torsions[i] = s;
  }
  return out;
}

double rmsd_over(const std::vector<int>& atoms, const std::vector<Vec3>& a, const std::vector<Vec3>& b) {
  if (atoms.empty()) return 0.0;
  double sum = 0;
  for (int i : atoms)
    for (int k = 0; k < 3; ++k) sum += (a[i][k] - b[i][k]) * (a[i][k] - b[i][k]);
  return std::sqrt(sum / static_cast<double>(atoms.size()));
}

}  // namespace dit::docking
