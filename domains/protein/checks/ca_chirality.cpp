// CA chirality (only when CB positions are present): the chiral volume
//   V = (N - CA) . ((C - CA) x (CB - CA))
// is about +2.5 A^3 for L-amino acids (the CCP4 monomer library / Phenix chirality restraint
// of CA: ideal |V| 2.5, s.d. 0.2 A^3) and negative for D. A residue is wrong when
// V < 1.0 A^3 (D, or CB nearly in the N-CA-C plane: more than 7 s.d. off).
// Glycines and residues without a CB are skipped.
//   chirality_wrong_fraction   fraction of CB residues with V < 1.0 A^3, <= 0 (none)
//   min_chiral_volume          smallest V (A^3), informational bound 1.0
#include "check_util.h"

namespace dit::protein::checks {
namespace {

constexpr double kMinChiralVolume = 1.0;  // A^3; L ideal +2.5 (monomer library), D negative
constexpr double kMaxWrongFraction = 0.0;

std::vector<CheckValue> ca_chirality(const Backbone& b) {
  if (!usable(b, 1))
    return {failed("chirality_wrong_fraction", kMaxWrongFraction), failed("min_chiral_volume", kMinChiralVolume)};
  size_t counted = 0, wrong = 0;
  double min_volume = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < b.size(); ++i) {
    if (b.sequence[i] == 'G' || !has_cb(b, i)) continue;
    const double v = dot(sub(b.n[i], b.ca[i]), cross(sub(b.c[i], b.ca[i]), sub(b.cb[i], b.ca[i])));
    ++counted;
    if (!(v >= kMinChiralVolume)) ++wrong;
    if (!(v >= min_volume)) min_volume = v;
  }
  if (counted == 0)
    return {failed("chirality_wrong_fraction", kMaxWrongFraction), failed("min_chiral_volume", kMinChiralVolume)};
  return {at_most("chirality_wrong_fraction", static_cast<double>(wrong) / static_cast<double>(counted),
                  kMaxWrongFraction),
          at_least("min_chiral_volume", min_volume, kMinChiralVolume)};
}

bool has_any_cb(const Backbone& b) {
  for (size_t i = 0; i < b.size(); ++i)
    if (has_cb(b, i)) return true;
  return false;
}

const bool registered_ca_chirality = register_check("ca_chirality", "CA chiral volume of L-amino acids (when CB is present)",
                                       ca_chirality, has_any_cb);

}  // namespace
}  // namespace dit::protein::checks
