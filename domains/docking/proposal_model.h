#pragma once
// Internal to libdit_docking: starting poses sampled by the docking DiT (flow matching on ligand
// heavy-atom coordinates given pocket atoms as context), projected onto the ligand's internal
// geometry (rigid body + torsions fitted to the sample), with score-gradient guidance.
#include <dit/domain.h>

#include "domains/docking/scoring.h"

#include <memory>
#include <string>
#include <vector>

namespace dit::docking {

struct ProposalSettings {
  std::string model_path;
  std::string sampler = "euler";
  int steps = 20;
  double guidance = 1.0;
  uint64_t seed = 0;
  std::string precision;  // "" = the default (dit/inference.h), fp32, bf16
  std::string device = "cpu";  // cpu, cuda, cuda:N, auto
};

// The pose of the ligand's own geometry nearest to `target` (heavy atoms in topology order).
Pose fit_pose(const LigandTopology& topology, const std::vector<Vec3>& target);

// One ligand in one pocket, as the docking network sees it. The topology and grid must outlive
// the requests that point to it.
struct DockingComplex {
  const LigandTopology* topology = nullptr;
  const ReceptorGrid* grid = nullptr;  // score guidance (null: none)
  Box box;
  torch::Tensor ligand;  // [L, kLigandFeatures]
  torch::Tensor pocket;  // [P, kPocketFeatures + 3] (coordinates scaled, box-centred)
};
// A request is one proposal for a complex: a batch may mix complexes (a screening batch), the
// ligands padded to the longest and the pockets to the largest.
struct DockingRequest {
  std::shared_ptr<const DockingComplex> complex;
};

// Docking on the shared structure-domain layer (dit/domain.h). Tokens: ligand heavy atoms
// (state: box-centred coordinates / kCoordScale), context: pocket heavy atoms. Guidance: the
// intermolecular score's gradient on the predicted clean pose. Decode: each sample is fitted
// onto its ligand's own geometry (rigid body + torsions). Its structures are starting poses for
// the physics search, so it has no checks of its own: the pose checks (CheckRegistry<
// PoseCheckInput>) run on the refined poses that `dock` returns.
class DockingDomain final : public StructureDomain<DockingRequest, Pose> {
 public:
  explicit DockingDomain(double guidance = 1.0) : guidance_(guidance) {}
  std::string name() const override { return "docking"; }
  int64_t state_dim() const override { return 3; }
  FlowInputs encode(const std::vector<DockingRequest>& requests) const override;
  VelocityFn guide_requests(VelocityFn velocity, const FlowInputs& inputs,
                            const std::vector<DockingRequest>& requests) const override;
  std::vector<Pose> decode(const torch::Tensor& x0, const FlowInputs& inputs,
                           const std::vector<DockingRequest>& requests) const override;
  CheckReport check(const Pose&) const override { return {}; }

 private:
  double guidance_;
};

// `count` starting poses for one complex from the model file of `settings` (read once per
// process), through dit::generate over DockingDomain.
std::vector<Pose> model_starts(const LigandTopology& topology, const RDKit::ROMol& ligand,
                               const Receptor& pocket, const ReceptorGrid& grid, const Box& box,
                               int count, const ProposalSettings& settings);

// The docking model's flow-matching loss (dit::flow_matching_loss) of each pose (every atom of
// the ligand, topology order; the heavy atoms are scored) in the pocket, averaged over `draws`
// draws: one value per pose. Draw k is (t_k, eps_k, a rotation of the whole complex about the box
// center), the same for every pose; t_k = (k + 1/2) / draws, the midpoints of equal strata of
// [0, 1]. Lower = nearer the crystal poses the model learned from. Draws come from settings.seed
// (a run's losses are reproducible).
std::vector<double> model_pose_losses(const LigandTopology& topology, const RDKit::ROMol& ligand,
                                      const Receptor& pocket, const Box& box,
                                      const std::vector<std::vector<Vec3>>& poses,
                                      const ProposalSettings& settings, int draws);

}  // namespace dit::docking
