// Cell volume and density against the range of real crystals:
//   volume_per_atom_lower / _upper   V / N within [kMinVolume, kMaxVolume] A^3 per atom
//   density_lower / _upper           mass / V within [kMinDensity, kMaxDensity] g/cm^3
// The bounds bracket the training crystals (docs/crystal.md) with a margin: they catch cells
// that collapsed or blew up, not unusual real ones.
#include "check_util.h"

namespace dit::crystal::checks {
namespace {

constexpr double kMinVolume = 4.0, kMaxVolume = 150.0;   // A^3 / atom
constexpr double kMinDensity = 0.5, kMaxDensity = 25.0;  // g / cm^3
constexpr double kGramsPerCm3 = 1.66053906660;           // 1 g/mol / A^3 = 1.6605 g/cm^3

std::vector<CheckValue> cell(const Crystal& c) {
  if (!usable(c))
    return {failed("volume_per_atom_lower", kMinVolume), failed("volume_per_atom_upper", kMaxVolume),
            failed("density_lower", kMinDensity), failed("density_upper", kMaxDensity)};
  const double volume = cell_volume(c.cell);
  double mass = 0;
  for (int z : c.numbers) mass += element(z).mass;
  const double per_atom = volume / static_cast<double>(c.size()), density = mass / volume * kGramsPerCm3;
  return {at_least("volume_per_atom_lower", per_atom, kMinVolume), at_most("volume_per_atom_upper", per_atom, kMaxVolume),
          at_least("density_lower", density, kMinDensity), at_most("density_upper", density, kMaxDensity)};
}

const bool registered_cell = register_check(
    "cell", "volume per atom within [4, 150] A^3 and density within [0.5, 25] g/cm^3", cell);

}  // namespace
}  // namespace dit::crystal::checks
