// Charge neutrality with common oxidation states (SMACT-style, Davies et al. 2016): some choice
// of one common oxidation state per element (pymatgen's table, data/crystal/elements.txt) sums
// to zero, or every element is a metal (alloys and intermetallics): value 1. Mixed-valence
// compounds (Fe3O4: Fe2+ and Fe3+), neutral only when atoms of one element take different
// common states, get 2 and pass too (SMACT's strict rule fails them; docs/crystal.md reports
// both). 0 fails.
#include "check_util.h"

namespace dit::crystal::checks {
namespace {

std::vector<CheckValue> charge(const Crystal& c) {
  if (c.size() == 0) return {failed("charge_neutral", 1)};
  const double neutral = charge_balance(composition_of(c));
  return {at_least("charge_neutral", neutral, 1)};
}

const bool registered_charge = register_check(
    "charge", "charge neutral with common oxidation states (SMACT; mixed valence allowed), or all metals", charge);

}  // namespace
}  // namespace dit::crystal::checks
