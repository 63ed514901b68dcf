#pragma once
// Internal to libdit_docking: the docking DiT. Ligand heavy atoms are tokens carrying their
// noisy coordinates; pocket heavy atoms are context tokens; both go through the same adaLN-Zero
// DiT blocks as images (dit/model.h), conditioned on the flow time t; the final layer reads the
// ligand tokens out as velocities. Coordinates are relative to the box center in units of
// kCoordScale angstrom. Module names: ligand_embedder, pocket_embedder, t_embedder,
// blocks.{i}.*, final_layer.* (the DiT's block and final-layer names).
#include <dit/model.h>

#include "domains/docking/pose.h"

namespace dit::docking {

constexpr double kCoordScale = 4.0;
constexpr int64_t kXsTypes = static_cast<int64_t>(XsType::Count);
// Ligand token: X-Score one-hot, aromatic, in ring, heavy degree / 4, hydrogens / 3, formal
// charge; then x, y, z. Pocket token: X-Score one-hot, backbone; then x, y, z.
constexpr int64_t kLigandFeatures = kXsTypes + 5;
constexpr int64_t kPocketFeatures = kXsTypes + 1;

struct DockingModelConfig {
  int64_t hidden = 192, depth = 6, heads = 6;
  int64_t max_pocket_atoms = 256;  // the nearest pocket heavy atoms to the box center
  Metadata to_metadata() const;
  static DockingModelConfig from_metadata(const Metadata& m, const std::string& source);
};

struct DockingDiTImpl : torch::nn::Module {
  explicit DockingDiTImpl(const DockingModelConfig& config);
  // x: [B, L, 3] noisy ligand coordinates, ligand: [B, L, kLigandFeatures], ligand_mask [B, L],
  // pocket: [B, P, kPocketFeatures + 3], pocket_mask [B, P], t [B] in [0, 1] -> v [B, L, 3].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ligand,
                        const torch::Tensor& ligand_mask, const torch::Tensor& pocket,
                        const torch::Tensor& pocket_mask, const torch::Tensor& t);
  DockingModelConfig config;
  torch::nn::Linear ligand_embedder{nullptr}, pocket_embedder{nullptr};
  TimestepEmbedder t_embedder{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  FinalLayer final_layer{nullptr};
};
TORCH_MODULE(DockingDiT);

void save_docking_model(const std::string& path, DockingDiT& model, Metadata extra = {});
DockingDiT load_docking_model(const std::string& path);

// Token features. Ligand: [L, kLigandFeatures] for the heavy atoms of `topology` (in its heavy
// order). Pocket: [P, kPocketFeatures + 3] (coordinates scaled), at most `max_atoms`, nearest to
// the box center first.
torch::Tensor ligand_features(const RDKit::ROMol& ligand, const LigandTopology& topology);
torch::Tensor pocket_tokens(const Receptor& pocket, const Box& box, int64_t max_atoms);

}  // namespace dit::docking
