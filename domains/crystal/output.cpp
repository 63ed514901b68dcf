// Crystals into H5MD files (see output.h, dit/crystal.h).
#include "domains/crystal/output.h"

#include <dit/error.h>
#include <dit/files.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace dit::crystal {

h5md::ParticleGroupSpec crystal_group(int64_t max_atoms) { return {"crystal", max_atoms, "periodic", 0}; }

void append_crystals(h5md::File& file, int64_t max_atoms, const std::vector<Generated<Crystal>>& samples,
                     const torch::Tensor& seeds) {
  const auto n = static_cast<int64_t>(samples.size());
  if (n == 0) return;
  std::vector<h5md::StructureSample> frames;
  for (int64_t s = 0; s < n; ++s) {
    const auto& g = samples[s];
    const auto& c = g.structure;
    const auto A = static_cast<int64_t>(c.size());
    if (A > max_atoms) throw Error(fmt::format("crystal of {} atoms: more than the file's capacity {}", A, max_atoms));
    const Mat3 m = lattice_matrix(c.cell);
    h5md::StructureSample f;
    f.index = g.index;
    f.positions = torch::empty({A, 3}, torch::kFloat32);
    f.species = torch::empty({A}, torch::kInt64);
    f.edges = torch::empty({3, 3}, torch::kFloat32);
    auto p = f.positions.accessor<float, 2>();
    auto e = f.edges.accessor<float, 2>();
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 3; ++k) e[r][k] = static_cast<float>(m[r][k]);
    for (int64_t i = 0; i < A; ++i) {
      f.species[i] = c.numbers[i];
      for (int k = 0; k < 3; ++k) {
        double x = 0;
        for (int r = 0; r < 3; ++r) x += c.frac[i][r] * m[r][k];
        p[i][k] = static_cast<float>(x);
      }
    }
    frames.push_back(std::move(f));
  }
  file.reserve(n * max_atoms * 64 + (1 << 20));
  h5md::append_structures(file, crystal_group(max_atoms), frames);
  h5md::append_check_observables(file, samples);
}

void write_crystals_h5(const std::string& path, const std::vector<Generated<Crystal>>& samples,
                       const torch::Tensor& seeds, const nlohmann::json& parameters) {
  int64_t max_atoms = 1;
  for (const auto& g : samples) max_atoms = std::max<int64_t>(max_atoms, static_cast<int64_t>(g.structure.size()));
  AtomicOutput out(path);
  {  // closed before the rename; an error leaves neither `path` nor the temporary
    h5md::File file(out.temp_path(), h5md::Mode::Create);
    file.write_json("parameters", parameters);
    h5md::define_particle_group(file, crystal_group(max_atoms));
    append_crystals(file, max_atoms, samples, seeds);
    h5md::append_generated_records(file, samples, seeds);
    file.flush();
  }
  out.commit();
}

}  // namespace dit::crystal
