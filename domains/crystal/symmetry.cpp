// Space groups and standardised cells by spglib (dit/crystal.h).
#include <dit/crystal.h>
#include <dit/error.h>
#include <spglib.h>

#include <cmath>
#include <memory>
#include <mutex>

namespace dit::crystal {

Symmetry find_symmetry(const Crystal& crystal, double symprec) {
  Symmetry out;
  const size_t n = crystal.size();
  if (n == 0 || !std::isfinite(cell_volume(crystal.cell))) return out;
  const Mat3 m = lattice_matrix(crystal.cell);
  double lattice[3][3];  // spglib: the lattice vectors are the columns
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) lattice[r][c] = m[c][r];
  std::vector<double> positions(3 * n);
  std::vector<int> types(crystal.numbers.begin(), crystal.numbers.end());
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) {
      const double f = crystal.frac[i][k] - std::floor(crystal.frac[i][k]);
      if (!std::isfinite(f)) return out;
      positions[3 * i + k] = f;
    }
  // spglib keeps its last error in a global: one call at a time.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<SpglibDataset, void (*)(SpglibDataset*)> data(
      spg_get_dataset(lattice, reinterpret_cast<double(*)[3]>(positions.data()), types.data(),
                      static_cast<int>(n), symprec),
      spg_free_dataset);
  if (!data || data->spacegroup_number <= 0) return out;
  out.number = data->spacegroup_number;
  out.international = data->international_symbol;
  Mat3 std_lattice;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) std_lattice[c][r] = data->std_lattice[r][c];
  out.standardized.name = crystal.name;
  out.standardized.cell = cell_parameters(std_lattice);
  for (int i = 0; i < data->n_std_atoms; ++i) {
    out.standardized.numbers.push_back(data->std_types[i]);
    out.standardized.frac.push_back({data->std_positions[i][0], data->std_positions[i][1], data->std_positions[i][2]});
  }
  return out;
}

}  // namespace dit::crystal
