#pragma once
// Internal to libdit_docking: the docking network is the core's TokenDiT (dit/model.h), the
// one block stack of every domain. Ligand heavy atoms are its tokens (features + noisy
// coordinates), pocket heavy atoms its context tokens; the flow time t drives adaLN-Zero; the
// final layer reads the ligand tokens out as velocities. Coordinates are relative to the box
// center in units of kCoordScale angstrom.
#include <dit/model.h>

#include "domains/docking/pose.h"

namespace dit::docking {

constexpr double kCoordScale = 4.0;
constexpr int64_t kXsTypes = static_cast<int64_t>(XsType::Count);
// Ligand token: X-Score one-hot, aromatic, in ring, heavy degree / 4, hydrogens / 3, formal
// charge; then x, y, z. Pocket token: X-Score one-hot, backbone; then x, y, z.
constexpr int64_t kLigandFeatures = kXsTypes + 5;
constexpr int64_t kPocketFeatures = kXsTypes + 1;

// The token layout of docking models, and the domain's own setting.
struct DockingModel {
  TokenDiT net{nullptr};
  int64_t max_pocket_atoms = 256;  // the nearest pocket heavy atoms to the box center
};

// A new docking network of the given width (the token layout is fixed by the features above).
DockingModel make_docking_model(int64_t hidden, int64_t depth, int64_t heads, int64_t max_pocket_atoms,
                                bool step_conditioning = false);
// Model files: the TokenDiT metadata plus dock.max_pocket_atoms and dock.coord_scale. Files of
// the first docking release (dit.kind = "docking": ligand_embedder / pocket_embedder) load too.
void save_docking_model(const std::string& path, const DockingModel& model, Metadata extra = {});
DockingModel load_docking_model(const std::string& path);
// The domain's metadata (written into model files and training checkpoints).
Metadata docking_metadata(int64_t max_pocket_atoms);

// Token features. Ligand: [L, kLigandFeatures] for the heavy atoms of `topology` (in its heavy
// order). Pocket: [P, kPocketFeatures + 3] (coordinates scaled), at most `max_atoms`, nearest to
// the box center first.
torch::Tensor ligand_features(const RDKit::ROMol& ligand, const LigandTopology& topology);
torch::Tensor pocket_tokens(const Receptor& pocket, const Box& box, int64_t max_atoms);
// A pose's heavy atoms in the model's frame [L, 3]: box-centred, in units of kCoordScale
// (`atoms`: every atom of the ligand, topology order).
torch::Tensor ligand_state(const LigandTopology& topology, const std::vector<Vec3>& atoms, const Box& box);

}  // namespace dit::docking
