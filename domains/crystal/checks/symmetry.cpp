// Symmetry by spglib: the space group found at symprec 0.01 A and 0.1 A (the number, 1..230).
// A sample passes when spglib finds a group at 0.1 A (P1 counts: generated cells need not be
// symmetric); 0 (no group: overlapping atoms, a degenerate cell) fails.
#include "check_util.h"

namespace dit::crystal::checks {
namespace {

std::vector<CheckValue> symmetry(const Crystal& c) {
  if (!usable(c)) return {failed("spacegroup_0.01", 1), failed("spacegroup_0.1", 1)};
  const double fine = find_symmetry(c, 0.01).number, coarse = find_symmetry(c, 0.1).number;
  return {CheckValue{"spacegroup_0.01", fine, 1, true}, at_least("spacegroup_0.1", coarse, 1)};
}

const bool registered_symmetry = register_check(
    "symmetry", "spglib space group at symprec 0.01 and 0.1 A (found at 0.1 A)", symmetry);

}  // namespace
}  // namespace dit::crystal::checks
