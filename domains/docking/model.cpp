// The docking DiT: module, token features, files (see model.h).
#include "domains/docking/model.h"

#include <dit/error.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace dit::docking {

Metadata DockingModelConfig::to_metadata() const {
  return {{"dock.hidden", std::to_string(hidden)}, {"dock.depth", std::to_string(depth)},
          {"dock.heads", std::to_string(heads)},
          {"dock.max_pocket_atoms", std::to_string(max_pocket_atoms)},
          {"dock.coord_scale", fmt::format("{}", kCoordScale)}};
}

DockingModelConfig DockingModelConfig::from_metadata(const Metadata& m, const std::string& source) {
  auto get = [&](const std::string& key) -> int64_t {
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
  };
  DockingModelConfig c;
  c.hidden = get("dock.hidden");
  c.depth = get("dock.depth");
  c.heads = get("dock.heads");
  c.max_pocket_atoms = get("dock.max_pocket_atoms");
  if (c.hidden % c.heads != 0)
    throw Error(fmt::format("{}: dock.hidden {} is not a multiple of dock.heads {}", source, c.hidden, c.heads));
  return c;
}

DockingDiTImpl::DockingDiTImpl(const DockingModelConfig& c) : config(c) {
  namespace nn = torch::nn;
  ligand_embedder = register_module("ligand_embedder", nn::Linear(kLigandFeatures + 3, c.hidden));
  pocket_embedder = register_module("pocket_embedder", nn::Linear(kPocketFeatures + 3, c.hidden));
  t_embedder = register_module("t_embedder", TimestepEmbedder(c.hidden));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(DiTBlock(c.hidden, c.heads, 4 * c.hidden));
  final_layer = register_module("final_layer", FinalLayer(c.hidden, 3));
  // The DiT's initialisation: xavier linears, adaLN-Zero blocks, zero output.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(false))
    if (auto* lin = m->as<nn::LinearImpl>()) {
      nn::init::xavier_uniform_(lin->weight);
      nn::init::zeros_(lin->bias);
    }
  for (int i : {0, 2}) nn::init::normal_(t_embedder->mlp[i]->as<nn::LinearImpl>()->weight, 0.0, 0.02);
  auto zero = [](nn::LinearImpl* l) {
    nn::init::zeros_(l->weight);
    nn::init::zeros_(l->bias);
  };
  for (auto& b : *blocks) zero(b->as<DiTBlockImpl>()->adaLN_modulation[1]->as<nn::LinearImpl>());
  zero(final_layer->adaLN_modulation[1]->as<nn::LinearImpl>());
  zero(final_layer->linear.get());
}

torch::Tensor DockingDiTImpl::forward(const torch::Tensor& x, const torch::Tensor& ligand,
                                      const torch::Tensor& ligand_mask, const torch::Tensor& pocket,
                                      const torch::Tensor& pocket_mask, const torch::Tensor& t) {
  const int64_t L = x.size(1);
  auto lig = ligand_embedder->forward(torch::cat({ligand, x}, -1));  // [B, L, D]
  auto poc = pocket_embedder->forward(pocket);                         // [B, P, D]
  auto tokens = torch::cat({lig, poc}, 1);                             // [B, L+P, D]
  auto mask = torch::cat({ligand_mask, pocket_mask}, 1).to(torch::kBool);  // [B, L+P]
  auto c = t_embedder->forward(t * kTimestepScale);                     // [B, D]
  for (auto& block : *blocks) tokens = block->as<DiTBlockImpl>()->forward(tokens, c, mask);
  auto out = final_layer->forward(tokens.narrow(1, 0, L), c);           // [B, L, 3]
  return out * ligand_mask.unsqueeze(-1).to(out.dtype());
}

void save_docking_model(const std::string& path, DockingDiT& model, Metadata extra) {
  auto meta = model->config.to_metadata();
  meta["dit.kind"] = "docking";
  for (auto& [k, v] : extra) meta[k] = v;
  save_safetensors(path, state_dict(*model), meta);
}

DockingDiT load_docking_model(const std::string& path) {
  Metadata meta;
  auto tensors = load_safetensors(path, &meta);
  DockingDiT model(DockingModelConfig::from_metadata(meta, path));
  load_state_dict(*model, tensors, path);
  model->eval();
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
