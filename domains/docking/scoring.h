#pragma once
// Internal to libdit_docking: the Vina-like empirical score (Trott & Olson 2010, eq. 1-5), its
// receptor grid maps, and the pose energy with gradients.
//
// For a heavy-atom pair at distance r with vdW radii R1, R2 (X-Score types), surface distance
// d = r - R1 - R2, within r < 8 A:
//   gauss1 = exp(-(d / 0.5)^2)             weight -0.035579
//   gauss2 = exp(-((d - 3) / 2)^2)         weight -0.005156
//   repulsion = d^2 if d < 0               weight  0.840245
//   hydrophobic (both hydrophobic): 1 for d < 0.5, 0 for d > 1.5, linear between; -0.035069
//   hbond (donor-acceptor): 1 for d < -0.7, 0 for d > 0, linear between;          -0.587439
// Affinity (kcal/mol) = intermolecular energy / (1 + 0.05846 N_rot).
#include "domains/docking/pose.h"

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace dit::docking {

constexpr double kScoreCutoff = 8.0;
constexpr double kGridSpacing = 0.375;
constexpr double kRotatableWeight = 0.05846;

struct TermValues {
  double gauss1 = 0, gauss2 = 0, repulsion = 0, hydrophobic = 0, hbond = 0;
  double weighted() const;
  void add(const TermValues& o);
};

// Weighted energy of one pair and its derivative d energy / d r; `terms` (optional) collects the
// unweighted terms.
double pair_energy(XsType a, XsType b, double r, double* dedr, TermValues* terms = nullptr);

// pair_energy read from a table of it and its derivative every kPairStep A to the cutoff, for
// every pair of types, with cubic Hermite interpolation (Vina precomputes its pair terms too):
// the grid maps and the search's intramolecular term without an exp per pair. The derivative
// is the interpolant's own, so gradients stay consistent. Mean error below 1e-4 kcal/mol, at
// most 5e-3 within a table step of the H-bond and hydrophobic kinks (test
// DockingScore.PairTableFollowsPairEnergy). Built once per process.
constexpr double kPairStep = 1.0 / 64;
constexpr int kPairNodes = static_cast<int>(kScoreCutoff / kPairStep) + 1;
// The table of one pair of types: kPairNodes x (energy, d energy / d r).
const double* pair_table(XsType a, XsType b);
// The value of a pair_table row at distance r, and its slope in *dedr.
inline double read_pair_table(const double* row, double r, double* dedr) {
  if (r >= kScoreCutoff) {
    if (dedr) *dedr = 0;
    return 0;
  }
  const double u = r > 0 ? r / kPairStep : 0.0;
  const int k = std::min(static_cast<int>(u), kPairNodes - 2);
  const double t = u - k, h = kPairStep;
  const double* n = row + 2 * k;
  const double e0 = n[0], d0 = n[1] * h, e1 = n[2], d1 = n[3] * h;  // slopes per table step
  const double t2 = t * t, t3 = t2 * t;
  if (dedr) *dedr = ((6 * t2 - 6 * t) * (e0 - e1) + (3 * t2 - 4 * t + 1) * d0 + (3 * t2 - 2 * t) * d1) / h;
  return (2 * t3 - 3 * t2 + 1) * e0 + (t3 - 2 * t2 + t) * d0 + (-2 * t3 + 3 * t2) * e1 + (t3 - t2) * d1;
}
inline double tabulated_pair_energy(XsType a, XsType b, double r, double* dedr) {
  return read_pair_table(pair_table(a, b), r, dedr);
}

// The receptor's per-type energy maps over a box: for each ligand atom type, a grid of the
// summed pair energy with the receptor's heavy atoms. A map is computed when a ligand first
// needs its type and then shared, so a screen (many ligands, one DockingTarget) computes each
// map once. Thread-safe: concurrent callers needing a missing map wait for one computation.
class GridMaps {
 public:
  GridMaps(const Receptor& receptor, const Box& box, double spacing = kGridSpacing);
  ~GridMaps();
  GridMaps(const GridMaps&) = delete;
  GridMaps& operator=(const GridMaps&) = delete;
  using Map = std::shared_ptr<const std::vector<float>>;
  // The maps of `types` (one per distinct type, in first-seen order), computing the missing ones
  // in one pass over the grid.
  std::vector<std::pair<XsType, Map>> maps(const std::vector<XsType>& types) const;
  const Box& box() const { return box_; }
  const Vec3& origin() const { return origin_; }
  const std::array<int, 3>& points() const { return n_; }
  double spacing() const { return spacing_; }
  int computed() const;  // maps computed so far (tests: a second ligand computes none)

 private:
  Box box_;
  Vec3 origin_{};
  double spacing_;
  std::array<int, 3> n_{};
  struct Atoms;
  std::unique_ptr<Atoms> atoms_;  // receptor heavy atoms near the box, in a cell list
  mutable std::mutex mutex_;
  mutable std::array<Map, static_cast<int>(XsType::Count)> cache_{};
};

// The maps one ligand's search reads: every ligand type it has, each a trilinear map.
class ReceptorGrid {
 public:
  ReceptorGrid(const GridMaps& maps, const std::vector<XsType>& types);
  // A grid of its own (one ligand): computes the maps of `types` only.
  ReceptorGrid(const Receptor& receptor, const Box& box, const std::vector<XsType>& types,
               double spacing = kGridSpacing);
  // Energy of one ligand atom of `type` at p; adds its gradient to *grad. Outside the box the
  // atom is held at the box face and pays kOutsidePenalty * (distance outside)^2.
  double energy(XsType type, const Vec3& p, Vec3* grad) const;
  const Box& box() const { return box_; }
  static constexpr double kOutsidePenalty = 1.0;

 private:
  Box box_;
  Vec3 origin_{};
  double spacing_;
  std::array<int, 3> n_{};
  std::array<int, static_cast<int>(XsType::Count)> slot_{};
  std::vector<GridMaps::Map> maps_;
};

// The energy the search minimises: intermolecular (grid) + intramolecular (pairs > 3 bonds apart
// across rotatable bonds), and the pose gradient.
struct PoseEnergy {
  double inter = 0, intra = 0;
  double total() const { return inter + intra; }
};
PoseEnergy pose_energy(const LigandTopology& ligand, const ReceptorGrid& grid, const Pose& pose,
                       PoseGradient* gradient);

// The exact (grid-free) terms of a final pose against every receptor heavy atom.
struct ScoreReport {
  TermValues inter_terms;
  double inter = 0, intra = 0;
  double affinity = 0;  // inter / (1 + w N_rot), kcal/mol, as Vina reports it
};
ScoreReport score_pose(const LigandTopology& ligand, const Receptor& receptor,
                       const std::vector<Vec3>& coords);

}  // namespace dit::docking
