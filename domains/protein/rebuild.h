#pragma once
// Internal to libdit_protein: a full backbone (N, CA, C, O, CB) from a C-alpha trace, BBQ-like
// (Gront, Kmiecik & Kolinski 2007, "Backbone building from quadrilaterals", J Comput Chem 28:1593).
//
// Each residue's N, C and O are placed in a local frame of its CA trace at the mean position that
// real chains show for the same local CA geometry (a binned table written by
// scripts/protein/make-rebuild-table.py, data/protein/rebuild-table.txt). Frame of residue i:
//   origin CA(i); u1 = unit(CA(i-1) - CA(i)), u2 = unit(CA(i+1) - CA(i));
//   x = unit(u2 - u1), y = unit(u1 + u2), z = x cross y.
// Features (degrees): theta(j) = angle CA(j-1)-CA(j)-CA(j+1); tau(j) = dihedral CA(j-1..j+2);
//   theta_prev = theta(i-1), theta = theta(i), theta_next = theta(i+1), tau_prev = tau(i-1),
//   tau = tau(i).
// N(i) is looked up in group "N" (keyed by theta_prev, theta, tau_prev, tau); C(i) and O(i) in
// group "CO" (keyed by theta, theta_next, tau_prev, tau); a group's levels go from fine to coarse
// and the first level holding the residue's bin wins (the last level is the global mean).
#include "domains/protein/backbone.h"

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace dit::protein {

struct RebuildTable {
  enum Feature { kThetaPrev = 0, kTheta, kThetaNext, kTauPrev, kTau, kNumFeatures };
  struct Axis {
    Feature feature;
    double lo = 0, width = 0;  // degrees; bin b covers [lo + b width, lo + (b + 1) width)
    int bins = 0;              // theta axes clamp to [0, bins); tau axes wrap
  };
  struct Level {
    std::vector<Axis> axes;                                   // empty: the global mean
    std::unordered_map<int64_t, std::vector<double>> values;  // row-major bin index -> values
  };
  struct Group {
    std::vector<Level> levels;  // fine to coarse; the last has no axes and one bin
    int values = 0;             // numbers per bin: 3 for "N", 6 for "CO" (C then O)
  };
  Group n, co;
  std::string source;  // the path it was read from
};

// Reads a table written by scripts/protein/make-rebuild-table.py. Text, '#' comments, then:
//   dit-rebuild-table 1
//   group N 3 LEVELS     (and group CO 6 LEVELS)
//   level NAXES [FEATURE LO WIDTH NBINS]... bins NROWS
//   NROWS rows: INDEX COUNT VALUE...
//   end
// Throws dit::Error naming the file, the line and the field on any malformed or missing part
// (unknown feature, index outside the axes, wrong number of values, a group whose last level is
// not the global mean, missing group "N" or "CO", missing "end").
RebuildTable load_rebuild_table(const std::string& path);

// The table shipped with the engine is dit::data_dir() + "/protein/rebuild-table.txt".

// Places N, C, O of every residue from the table and the ideal CB (L-chirality)
//   b = CA - N, c = C - CA, a = b x c, CB = -0.58273431 a + 0.56802827 b - 0.54067466 c + CA,
// rescaled to CA-CB = 1.530 A (the formula gives that length only for an ideal N-CA-C angle).
// N and C are put at the ideal distance from CA (1.458, 1.525 A) and O at 1.231 A from C, along
// the looked-up directions. CA is copied unchanged; sequence is all 'A'; name is empty.
// Termini: two virtual CAs are added at each end by continuing the trace's local geometry
// (the same CA-CA distance, virtual angle and virtual dihedral as the nearest real residues),
// so the end residues are built from the same table as interior ones. Chains of 1-3 residues
// have no dihedral to copy and use a default (tau = 50 deg, theta = 120 deg; helix-like
// placement is arbitrary there). Chain breaks are not special-cased: the features are computed
// from whatever CA geometry is given (theta axes clamp). Degenerate frames (coincident or
// collinear CAs) use an arbitrary perpendicular. Throws dit::Error on a non-finite coordinate,
// naming the residue.
Backbone rebuild_backbone(const std::vector<Vec3>& ca, const RebuildTable& table);

// The ideal CB of one residue (the formula above, not rescaled).
Vec3 ideal_cb(const Vec3& n, const Vec3& ca, const Vec3& c);

}  // namespace dit::protein
