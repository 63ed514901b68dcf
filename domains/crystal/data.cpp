// Training crystals from the prepared HDF5 file and the crystal training run (dit/crystal.h).
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/h5md.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <dit/fs.h>

#include "domains/crystal/data.h"
#include "domains/crystal/model.h"

namespace dit::crystal {

std::vector<Crystal> load_crystals(const std::string& path, int split, int64_t max_atoms, std::vector<int>* spacegroups) {
  if (!dit::fs::is_regular_file(path))
    throw Error(fmt::format("{}: no such file (prepare it with scripts/crystal/prepare.py)", path));
  h5md::File file(path, h5md::Mode::ReadData);
  for (const char* name : {"crystals/num_atoms", "crystals/offset", "crystals/lattice", "crystals/split",
                           "crystals/spacegroup", "atoms/Z", "atoms/frac"})
    if (!file.exists(name)) throw Error(fmt::format("{}: no dataset '{}' (see docs/crystal.md)", path, name));
  auto counts = file.read("crystals/num_atoms").to(torch::kLong);
  auto offsets = file.read("crystals/offset").to(torch::kLong);
  auto lattice = file.read("crystals/lattice").to(torch::kFloat64);
  auto splits = file.read("crystals/split").to(torch::kLong);
  auto groups = file.read("crystals/spacegroup").to(torch::kLong);
  auto numbers = file.read("atoms/Z").to(torch::kLong);
  auto frac = file.read("atoms/frac").to(torch::kFloat64);
  const int64_t S = counts.size(0), A = numbers.size(0);
  if (offsets.size(0) != S || lattice.sizes() != torch::IntArrayRef({S, 6}) || splits.size(0) != S ||
      groups.size(0) != S || frac.sizes() != torch::IntArrayRef({A, 3}))
    throw Error(fmt::format("{}: datasets of inconsistent shapes ({} crystals, {} atoms; see docs/crystal.md)", path, S, A));
  auto n = counts.accessor<int64_t, 1>();
  auto o = offsets.accessor<int64_t, 1>();
  auto l = lattice.accessor<double, 2>();
  auto z = numbers.accessor<int64_t, 1>();
  auto f = frac.accessor<double, 2>();
  std::vector<Crystal> out;
  for (int64_t s = 0; s < S; ++s) {
    if (splits[s].item<int64_t>() != split || n[s] < 1 || n[s] > max_atoms) continue;
    if (o[s] < 0 || o[s] + n[s] > A) throw Error(fmt::format("{}: crystal {}: offset {} + {} atoms beyond atoms/Z", path, s, o[s], n[s]));
    Crystal c;
    c.name = fmt::format("{}#{}", dit::fs::path(path).filename().string(), s);
    for (int k = 0; k < 6; ++k) c.cell[k] = l[s][k];
    if (!std::isfinite(cell_volume(c.cell))) throw Error(fmt::format("{}: crystal {}: crystals/lattice is not a cell", path, s));
    for (int64_t i = o[s]; i < o[s] + n[s]; ++i) {
      if (z[i] < 1 || z[i] > kMaxZ) throw Error(fmt::format("{}: atoms/Z[{}] = {} outside 1..{}", path, i, z[i], kMaxZ));
      c.numbers.push_back(static_cast<int>(z[i]));
      c.frac.push_back({f[i][0] - std::floor(f[i][0]), f[i][1] - std::floor(f[i][1]), f[i][2] - std::floor(f[i][2])});
    }
    if (spacegroups) spacegroups->push_back(static_cast<int>(groups[s].item<int64_t>()));
    out.push_back(std::move(c));
  }
  return out;
}

LatticeScaling fit_lattice_scaling(const std::vector<Crystal>& crystals) {
  if (crystals.empty()) throw Error("crystal training data: no crystals");
  LatticeScaling s;
  std::array<double, 6> sum{}, sq{};
  for (const auto& c : crystals) {
    const auto v = lattice_numbers(c.cell, static_cast<int64_t>(c.size()));
    for (int k = 0; k < 6; ++k) sum[k] += v[k], sq[k] += v[k] * v[k];
  }
  const double n = static_cast<double>(crystals.size());
  for (int k = 0; k < 6; ++k) {
    s.mean[k] = sum[k] / n;
    s.std[k] = std::sqrt(std::max(sq[k] / n - s.mean[k] * s.mean[k], 1e-6));
  }
  return s;
}

CrystalData::CrystalData(std::vector<Crystal> crystals, std::vector<int> spacegroups, LatticeScaling scaling)
    : crystals_(std::move(crystals)), spacegroups_(std::move(spacegroups)), scaling_(scaling) {
  if (crystals_.empty()) throw Error("crystal training data: no crystals");
}

void CrystalData::check(const FlowNetImpl& net) const {
  const auto* token = dynamic_cast<const TokenDiTImpl*>(&net);
  if (!token || token->config().token_features != kTokenFeatures || token->config().state_dim != 3 ||
      token->config().num_classes != kSpaceGroups)
    throw Error("crystal training data: the network is not a crystal model (make_crystal_model)");
}

TrainBatch CrystalData::get(const torch::Tensor& index, at::Generator& gen) const {
  const int64_t B = index.size(0);
  int64_t T = 0;
  for (int64_t b = 0; b < B; ++b)
    T = std::max<int64_t>(T, kLatticeTokens + static_cast<int64_t>(crystals_.at(index[b].item<int64_t>()).size()));
  TrainBatch batch;
  batch.x0 = torch::zeros({B, T, 3});
  auto& in = batch.inputs;
  in.features = torch::zeros({B, T, kTokenFeatures});
  in.mask = torch::zeros({B, T}, torch::kBool);
  in.cond = torch::zeros({B, kCondFeatures});
  in.labels = torch::zeros({B}, torch::kLong);
  batch.periodic = torch::zeros({B, T, 3}, torch::kBool);
  // A random origin per crystal: the model learns that translations change nothing.
  auto shift = at::rand({B, 3}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  auto s = shift.accessor<double, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t k = index[b].item<int64_t>();
    const auto& c = crystals_[k];
    // Tokens in the order of atom_numbers (by Z): the same as at sampling.
    std::vector<size_t> order(c.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return c.numbers[x] < c.numbers[y]; });
    fill_inputs(composition_of(c), spacegroups_[k], T, in, b);
    const auto n = static_cast<int64_t>(c.size());
    const auto lat = encode_lattice(c.cell, n, scaling_);
    auto row = batch.x0[b];
    auto x = row.accessor<float, 2>();
    for (int d = 0; d < 3; ++d) x[0][d] = static_cast<float>(lat[d]), x[1][d] = static_cast<float>(lat[3 + d]);
    for (int64_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) {
        double v = c.frac[order[i]][d] + s[b][d];
        x[kLatticeTokens + i][d] = static_cast<float>(v - std::round(v));
      }
    batch.periodic[b].narrow(0, kLatticeTokens, n).fill_(true);
  }
  return batch;
}

void train_crystal_model(const CrystalTrainOptions& o) {
  if (o.max_atoms < 1 || o.max_atoms > kMaxAtoms)
    throw Error(fmt::format("crystal train: --max-atoms {} outside 1..{}", o.max_atoms, kMaxAtoms));
  TrainOptions opts = o.train;
  if (opts.objective != "flow-matching")
    throw Error(fmt::format("crystal train: objective '{}': crystals train with flow-matching only", opts.objective));
  torch::manual_seed(opts.seed);  // weight initialisation
  auto model = make_crystal_model(o.hidden, o.depth, o.heads, o.periodic_pairs);
  std::vector<int> groups;
  auto crystals = load_crystals(o.data, 0, o.max_atoms, &groups);
  const auto scaling = fit_lattice_scaling(crystals);
  const auto n_crystals = crystals.size();
  int64_t atoms = 0;
  for (const auto& c : crystals) atoms += static_cast<int64_t>(c.size());
  FlowMatchingTrainer trainer(model.ptr(), std::make_shared<CrystalData>(std::move(crystals), std::move(groups), scaling), opts);
  TrainRun run;
  run.label = "crystal train";
  run.checkpoint = o.checkpoint;
  run.checkpoint_every = o.checkpoint_every;
  run.resume = o.resume;
  run.on_start = [&](FlowMatchingTrainer& t) {
    fmt::print(stderr, "crystal train: {} training crystals of 1..{} atoms ({} atoms) from {}\n{}\n"
               "lattice mean {:.3f} {:.3f} {:.3f} {:.1f} {:.1f} {:.1f}, std {:.3f} {:.3f} {:.3f} {:.1f} {:.1f} {:.1f}\n"
               "batch {}, steps {} (from {})\n", n_crystals, o.max_atoms, atoms, o.data, model->config().describe(),
               scaling.mean[0], scaling.mean[1], scaling.mean[2], scaling.mean[3], scaling.mean[4], scaling.mean[5],
               scaling.std[0], scaling.std[1], scaling.std[2], scaling.std[3], scaling.std[4], scaling.std[5],
               opts.batch_size, opts.steps, t.current_step());
  };
  run.save_model = [&](FlowMatchingTrainer& t) {
    save_crystal_model(o.output, *std::static_pointer_cast<TokenDiTImpl>(t.ema_net()), scaling);
  };
  const auto result = run_training(trainer, run);
  fmt::print(stderr, "crystal train: {} at step {}: {}, {}\n", result.stopped ? "stopped" : "finished", result.step,
             o.output, o.checkpoint);
}

}  // namespace dit::crystal
