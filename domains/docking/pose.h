#pragma once
// Internal to libdit_docking: the ligand as a torsion tree, poses in (translation, orientation,
// torsions), and their Cartesian coordinates and gradients.
//
// A pose is x_j = R(q) (conf_j(theta) - c) + T, where conf(theta) turns each rotatable bond of
// the reference conformer by theta_i (the side away from the root atom moves), c is the
// reference heavy-atom centroid, R(q) a unit quaternion's rotation and T the ligand's center.
// Bond lengths, angles, rings and chirality are those of the prepared (ETKDG or input)
// conformer, so every pose keeps the ligand's internal geometry.
#include <dit/docking.h>

#include <random>
#include <vector>

namespace dit::docking {

struct Torsion {
  int from = 0, to = 0;     // the rotatable bond (atom indices); atoms on the `to` side move
  std::vector<int> moving;  // every atom (hydrogens too) that turns with it
};

struct Quaternion {
  double w = 1, x = 0, y = 0, z = 0;
  static Quaternion from_rotation_vector(const Vec3& v);  // exp map: axis * angle
  static Quaternion random(std::mt19937_64& rng);         // uniform on SO(3)
  Quaternion operator*(const Quaternion& o) const;
  void normalize();
  Vec3 rotate(const Vec3& v) const;
};

struct Pose {
  Vec3 position{};           // T: where the reference centroid goes
  Quaternion orientation;    // R
  std::vector<double> torsions;  // theta, one per LigandTopology::torsions (radians)
};

// The tangent of a pose: d/dT, torque (d/d rotation vector applied on the left), d/d theta.
struct PoseGradient {
  Vec3 position{}, orientation{};
  std::vector<double> torsions;
  double dot(const PoseGradient& o) const;
  void axpy(double a, const PoseGradient& o);  // this += a * o
  void scale(double a);
  size_t size() const { return 6 + torsions.size(); }
};
// pose + step (orientation updated by the rotation vector step.orientation).
Pose advance(const Pose& pose, const PoseGradient& step, double alpha);

// A ligand ready for the search: its reference conformer, heavy atoms with X-Score types,
// torsion tree and the heavy-atom pairs whose distance changes with torsions.
struct LigandTopology {
  int num_atoms = 0;
  std::vector<Vec3> reference;          // all atoms, the prepared conformer
  std::vector<int> heavy;               // indices of heavy atoms
  std::vector<XsType> heavy_type;       // X-Score type of each heavy atom
  Vec3 centroid{};                      // c: reference heavy-atom centroid
  std::vector<Torsion> torsions;
  std::vector<std::pair<int, int>> intra_pairs;  // positions in `heavy`, > 3 bonds apart, not rigid
  int num_rotatable() const { return static_cast<int>(torsions.size()); }

  // Coordinates of every atom (hydrogens follow their heavy atom) for a pose.
  std::vector<Vec3> coordinates(const Pose& pose) const;
  // Chain rule: per-atom gradients g (same indexing as coordinates) -> pose gradient.
  PoseGradient pose_gradient(const Pose& pose, const std::vector<Vec3>& coords,
                             const std::vector<Vec3>& g) const;
  Pose identity_pose() const;  // the reference conformer where it is
};

// Builds the topology of a prepared ligand (explicit hydrogens, one conformer). Rotatable bonds:
// single, acyclic, between two atoms with more than one heavy neighbour, not amide C-N, not
// to a terminal CX3 with three identical hydrogens/halogens. Throws when there are more than
// `max_rotatable` of them.
LigandTopology build_topology(const RDKit::ROMol& ligand, int max_rotatable = 32);

// X-Score type of each heavy atom of an RDKit molecule with explicit hydrogens.
XsType ligand_xs_type(const RDKit::Atom& atom);

// RMSD over the listed atoms of two conformations of one molecule (no alignment, no symmetry);
// 0 for an empty list.
double rmsd_over(const std::vector<int>& atoms, const std::vector<Vec3>& a, const std::vector<Vec3>& b);
// Over the ligand's heavy atoms.
inline double heavy_rmsd(const LigandTopology& ligand, const std::vector<Vec3>& a,
                         const std::vector<Vec3>& b) {
  return rmsd_over(ligand.heavy, a, b);
}

}  // namespace dit::docking
