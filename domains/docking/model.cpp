// The docking DiT: module, token features, files (see model.h).
#include "domains/docking/model.h"

#include <dit/error.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace dit::docking {

namespace {
TokenDiTConfig token_config(int64_t hidden, int64_t depth, int64_t heads) {
  TokenDiTConfig c;
  c.state_dim = 3;
  c.token_features = kLigandFeatures;
  c.context_features = kPocketFeatures + 3;
  c.hidden_size = hidden, c.depth = depth, c.num_heads = heads;
  return c;
}

int64_t size_entry(const Metadata& m, const std::string& key, const std::string& source) {
  auto it = m.find(key);
  if (it == m.end())
    throw Error(fmt::format("{}: not a docking model (metadata '{}' missing)", source, key));
  try {
    const int64_t v = std::stoll(it->second);
    if (v < 1 || v > 65536) throw std::out_of_range(key);
    return v;
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: metadata '{}' = '{}' is not a valid size", source, key, it->second));
  }
}
}  // namespace

Metadata docking_metadata(int64_t max_pocket_atoms) {
  return {{"dit.domain", "docking"},
          {"dock.max_pocket_atoms", std::to_string(max_pocket_atoms)},
          {"dock.coord_scale", fmt::format("{}", kCoordScale)}};
}

DockingModel make_docking_model(int64_t hidden, int64_t depth, int64_t heads, int64_t max_pocket_atoms,
                                bool step_conditioning) {
  if (hidden % heads != 0)
    throw Error(fmt::format("docking model: hidden {} is not a multiple of heads {}", hidden, heads));
  if (max_pocket_atoms < 1) throw Error("docking model: max_pocket_atoms must be >= 1");
  auto config = token_config(hidden, depth, heads);
  config.step_conditioning = step_conditioning;
  return {TokenDiT(config), max_pocket_atoms};
}

void save_docking_model(const std::string& path, const DockingModel& model, Metadata extra) {
  auto meta = docking_metadata(model.max_pocket_atoms);
  for (auto& [k, v] : extra) meta[k] = v;
  save_flow_net(path, *model.net, meta);
}

DockingModel load_docking_model(const std::string& path) {
  SafeTensorsFile file(path);
  const auto meta = file.metadata();
  DockingModel model;
  model.max_pocket_atoms = size_entry(meta, "dock.max_pocket_atoms", path);
  auto kind = meta.find("dit.kind");
  if (kind != meta.end() && kind->second == "docking") {
    // The first release's files: same network, its embedders under the docking names.
    const int64_t hidden = size_entry(meta, "dock.hidden", path), heads = size_entry(meta, "dock.heads", path);
    if (hidden % heads != 0)
      throw Error(fmt::format("{}: dock.hidden {} is not a multiple of dock.heads {}", path, hidden, heads));
    model.net = TokenDiT(token_config(hidden, size_entry(meta, "dock.depth", path), heads));
    TensorMap weights;
    for (const auto& name : file.names()) {
      std::string key = name;
      for (auto [from, to] : {std::pair<std::string, std::string>{"ligand_embedder.", "x_embedder."},
                              {"pocket_embedder.", "context_embedder."}})
        if (key.rfind(from, 0) == 0) key = to + key.substr(from.size());
      weights[key] = file.view(name);
    }
    load_state_dict(*model.net, weights, path);
  } else {
    auto net = std::dynamic_pointer_cast<TokenDiTImpl>(load_flow_net(path));
    const auto expected = token_config(1, 1, 1);
    if (!net || net->config().state_dim != 3 || net->config().token_features != expected.token_features ||
        net->config().context_features != expected.context_features)
      throw Error(fmt::format("{}: not a docking model (expected a token DiT with {} ligand and {} "
                              "pocket features)", path, expected.token_features, expected.context_features));
    model.net = TokenDiT(net);
  }
  model.net->eval();
  return model;
}

torch::Tensor ligand_features(const RDKit::ROMol& ligand, const LigandTopology& topology) {
  const int64_t L = static_cast<int64_t>(topology.heavy.size());
  auto f = torch::zeros({L, kLigandFeatures});
  auto a = f.accessor<float, 2>();
  for (int64_t i = 0; i < L; ++i) {
    const auto* atom = ligand.getAtomWithIdx(topology.heavy[i]);
    a[i][static_cast<int>(topology.heavy_type[i])] = 1;
    int heavy = 0, hydrogens = 0;
    for (const auto* n : ligand.atomNeighbors(atom)) (n->getAtomicNum() == 1 ? hydrogens : heavy)++;
    a[i][kXsTypes + 0] = atom->getIsAromatic();
    a[i][kXsTypes + 1] = ligand.getRingInfo()->numAtomRings(atom->getIdx()) > 0;
    a[i][kXsTypes + 2] = heavy / 4.0f;
    a[i][kXsTypes + 3] = hydrogens / 3.0f;
    a[i][kXsTypes + 4] = static_cast<float>(atom->getFormalCharge());
  }
  return f;
}

torch::Tensor ligand_state(const LigandTopology& topology, const std::vector<Vec3>& atoms, const Box& box) {
  if (atoms.size() != static_cast<size_t>(topology.num_atoms))
    throw Error(fmt::format("docking model: a pose has {} atoms, the ligand {}", atoms.size(), topology.num_atoms));
  auto x = torch::empty({static_cast<int64_t>(topology.heavy.size()), 3});
  auto a = x.accessor<float, 2>();
  for (size_t i = 0; i < topology.heavy.size(); ++i)
    for (int k = 0; k < 3; ++k)
      a[static_cast<int64_t>(i)][k] = static_cast<float>((atoms[topology.heavy[i]][k] - box.center[k]) / kCoordScale);
  return x;
}

torch::Tensor pocket_tokens(const Receptor& pocket, const Box& box, int64_t max_atoms) {
  std::vector<int> heavy = pocket.heavy_atoms();
  auto d2 = [&](int i) {
    double s = 0;
    for (int k = 0; k < 3; ++k) s += std::pow(pocket.atoms[i].position[k] - box.center[k], 2);
    return s;
  };
  std::stable_sort(heavy.begin(), heavy.end(), [&](int a, int b) { return d2(a) < d2(b); });
  if (static_cast<int64_t>(heavy.size()) > max_atoms) heavy.resize(max_atoms);
  auto f = torch::zeros({static_cast<int64_t>(heavy.size()), kPocketFeatures + 3});
  auto a = f.accessor<float, 2>();
  for (size_t i = 0; i < heavy.size(); ++i) {
    const auto& atom = pocket.atoms[heavy[i]];
    a[i][static_cast<int>(atom.type)] = 1;
    a[i][kXsTypes] = !atom.hetero && (atom.name == "N" || atom.name == "CA" || atom.name == "C" || atom.name == "O");
    for (int k = 0; k < 3; ++k)
      a[i][kPocketFeatures + k] = static_cast<float>((atom.position[k] - box.center[k]) / kCoordScale);
  }
  return f;
}

}  // namespace dit::docking
