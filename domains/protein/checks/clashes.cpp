// Clashes.
//   min_nonadjacent_ca_ca   smallest CA-CA distance between residues with |i - j| >= 2, >= 3.0 A
//                           (issue 17; real chains: ~3.8 A at the very least, e.g. cis-Pro turns)
//   backbone_clashscore     clashes per 1000 backbone atoms, <= kMaxClashscore (tuned), where a
//                           clash is a van der Waals overlap (r_a + r_b - d) >= 0.4 A between
//                           backbone heavy atoms (N, CA, C, O, CB) of residues |i - j| >= 2
//                           (MolProbity's clashscore counts all-atom clashes per 1000 atoms)
//   max_backbone_overlap    the largest overlap, <= kMaxOverlap (tuned: a severe clash)
//     0.4 A is MolProbity's clash overlap (Word et al. 1999, J. Mol. Biol. 285:1711; Chen et al.
//     2010); radii are Bondi's (1964): C 1.70, N 1.55, O 1.52 A. Backbone N...O pairs are
//     H-bond donor/acceptor pairs (Probe exempts H-bonds): their contact distance is 2.9 A
//     instead of 3.07, so they clash only below 2.5 A (observed N...O H-bonds >= ~2.6 A).
//     Pairs of neighbouring residues (|i - j| = 1) are all within 1-4 bonded paths or
//     restrained by the bond angles and omega and are not tested.
#include <algorithm>

#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kMinCaCa = 3.0;          // A, issue 17
constexpr double kClashOverlap = 0.4;     // A, MolProbity clash
constexpr double kMaxClashscore = 4.0;    // per 1000 backbone atoms, tuned on real chains
constexpr double kMaxOverlap = 1.0;       // A, tuned on real chains
constexpr double kRadiusC = 1.70, kRadiusN = 1.55, kRadiusO = 1.52;  // Bondi 1964
constexpr double kHBondContact = 2.9;     // A, N...O contact distance (clash below 2.5)
constexpr int kMinSeparation = 2;         // |i - j|
constexpr double kNeighbourCutoff = 14.0; // A, CA-CA beyond which no backbone atoms can touch

enum Kind { kN, kC, kO };

std::vector<CheckValue> clashes(const Backbone& b) {
  if (!usable(b, 3))
    return {failed("min_nonadjacent_ca_ca", kMinCaCa), failed("backbone_clashscore", kMaxClashscore),
            failed("max_backbone_overlap", kMaxOverlap)};
  struct Atom {
    Vec3 p;
    Kind kind;
  };
  const size_t n = b.size();
  std::vector<std::vector<Atom>> atoms(n);
  for (size_t i = 0; i < n; ++i) {
    atoms[i] = {{b.n[i], kN}, {b.ca[i], kC}, {b.c[i], kC}, {b.o[i], kO}};
    if (b.sequence[i] != 'G' && has_cb(b, i)) atoms[i].push_back({b.cb[i], kC});
  }
  auto radius = [](Kind k) { return k == kN ? kRadiusN : k == kO ? kRadiusO : kRadiusC; };
  double min_ca = std::numeric_limits<double>::infinity();
  double max_overlap = -std::numeric_limits<double>::infinity();
  size_t clash_count = 0, atom_count = 0;
  for (const auto& a : atoms) atom_count += a.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + kMinSeparation; j < n; ++j) {
      const double dca = distance(b.ca[i], b.ca[j]);
      if (!(dca >= min_ca)) min_ca = dca;
      if (dca > kNeighbourCutoff) continue;
      for (const Atom& x : atoms[i])
        for (const Atom& y : atoms[j]) {
          const bool hbond_pair = (x.kind == kN && y.kind == kO) || (x.kind == kO && y.kind == kN);
          const double contact = hbond_pair ? kHBondContact : radius(x.kind) + radius(y.kind);
          const double overlap = contact - distance(x.p, y.p);
          if (!(overlap <= max_overlap)) max_overlap = overlap;
          if (!(overlap < kClashOverlap)) ++clash_count;
        }
    }
  }
  const double clashscore = 1000.0 * static_cast<double>(clash_count) / static_cast<double>(atom_count);
  return {at_least("min_nonadjacent_ca_ca", min_ca, kMinCaCa), at_most("backbone_clashscore", clashscore, kMaxClashscore),
          at_most("max_backbone_overlap", max_overlap, kMaxOverlap)};
}

const bool registered_clashes = register_check(
    "clashes", "non-adjacent CA-CA >= 3 A; backbone clashes (vdW overlap >= 0.4 A, Bondi radii) per 1000 atoms <= 4, none >= 1 A", clashes);

}  // namespace
}  // namespace dit::protein::checks
