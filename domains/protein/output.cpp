// Backbones into H5MD and PDB files (see output.h, dit/protein.h).
#include "domains/protein/output.h"

#include <dit/error.h>
#include <dit/files.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace dit::protein {

h5md::ParticleGroupSpec backbone_group(int64_t max_length) {
  return {"backbone", kAtomsPerResidue * max_length, "none", 0};
}

void append_backbones(h5md::File& file, int64_t max_length, const std::vector<Generated<Backbone>>& samples,
                      const torch::Tensor& seeds) {
  const auto n = static_cast<int64_t>(samples.size());
  if (n == 0) return;
  std::vector<h5md::StructureSample> frames;
  auto index = torch::empty({n}, torch::kInt64);
  auto lengths = torch::empty({n}, torch::kInt64);
  for (int64_t s = 0; s < n; ++s) {
    const auto& g = samples[s];
    const auto& b = g.structure;
    const auto L = static_cast<int64_t>(b.size());
    if (L > max_length) throw Error(fmt::format("backbone of {} residues: more than the file's capacity {}", L, max_length));
    h5md::StructureSample f;
    f.index = g.index;
    f.positions = torch::full({kAtomsPerResidue * L, 3}, std::nanf(""), torch::kFloat32);
    f.species = torch::empty({kAtomsPerResidue * L}, torch::kInt64);
    auto p = f.positions.accessor<float, 2>();
    auto z = f.species.accessor<int64_t, 1>();
    for (int64_t r = 0; r < L; ++r) {
      const std::vector<Vec3>* atoms[kAtomsPerResidue] = {&b.n, &b.ca, &b.c, &b.o, &b.cb};
      const int64_t species[kAtomsPerResidue] = {7, 6, 6, 8, 6};
      for (int64_t a = 0; a < kAtomsPerResidue; ++a) {
        const int64_t row = r * kAtomsPerResidue + a;
        z[row] = species[a];
        if (atoms[a]->size() != static_cast<size_t>(L)) continue;  // e.g. no CB built: NaN
        for (int k = 0; k < 3; ++k) p[row][k] = static_cast<float>((*atoms[a])[r][k]);
      }
    }
    frames.push_back(std::move(f));
    index[s] = g.index;
    lengths[s] = L;
  }
  file.reserve(n * kAtomsPerResidue * max_length * 64 + (1 << 20));
  h5md::append_structures(file, backbone_group(max_length), frames);
  h5md::append_observable(file, "length", lengths, index);
  h5md::append_check_observables(file, samples);
}

void write_backbones_h5(const std::string& path, const std::vector<Generated<Backbone>>& samples,
                        const torch::Tensor& seeds, const nlohmann::json& parameters) {
  int64_t max_length = 1;
  for (const auto& g : samples) max_length = std::max<int64_t>(max_length, static_cast<int64_t>(g.structure.size()));
  AtomicOutput out(path);
  {  // closed before the rename; an error leaves neither `path` nor the temporary
    h5md::File file(out.temp_path(), h5md::Mode::Create);
    file.write_json("parameters", parameters);
    h5md::define_particle_group(file, backbone_group(max_length));
    append_backbones(file, max_length, samples, seeds);
    h5md::append_generated_records(file, samples, seeds);
    file.flush();
  }
  out.commit();
}

}  // namespace dit::protein
