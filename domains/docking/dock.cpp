// dock(): starting poses (random or sampled by the model) -> Monte Carlo + L-BFGS on the
// Vina-like score -> distinct poses -> exact score terms and PoseBusters checks -> ranking.
#include <GraphMol/Conformer.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "domains/docking/proposal_model.h"
#include "domains/docking/refine.h"
#include "domains/docking/search.h"

namespace dit::docking {

Receptor box_pocket(const Receptor& receptor, const Box& box, double cutoff, const std::string& what) {
  Receptor pocket = pocket_atoms(receptor, box, cutoff);
  if (pocket.heavy_atoms().empty())
    throw Error(fmt::format("{}: no receptor atom within {} A of {} (center {:.2f},{:.2f},{:.2f}, "
                            "size {:.1f}x{:.1f}x{:.1f}): the box is not at the protein",
                            receptor.source, cutoff, what, box.center[0], box.center[1],
                            box.center[2], box.size[0], box.size[1], box.size[2]));
  return pocket;
}

DockResult dock(const Receptor& receptor, const RDKit::ROMol& ligand, const Box& box,
                const DockOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  box.validate("dock: --box");
  if (options.num_poses < 1) throw Error("dock: the number of poses (-n) must be at least 1");
  if (options.top < 1) throw Error("dock: --top must be at least 1");
  const Receptor pocket = box_pocket(receptor, box, options.pocket_cutoff);
  const LigandTopology topology = build_topology(ligand);
  const ReceptorGrid grid(pocket, box, topology.heavy_type);

  DockResult result;
  result.num_rotatable = topology.num_rotatable();
  // Stage timings: the starting poses, then the search.
  auto lap = [last = std::chrono::steady_clock::now()]() mutable {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last).count();
    last = now;
    return s;
  };

  std::vector<Pose> starts;
  if (options.mode != "search") {
    if (options.mode != "score-only" && options.mode != "local-only")
      throw Error(fmt::format("dock: unknown mode '{}' (search, score-only, local-only)", options.mode));
    if (!box.contains(topology.centroid, 0))
      throw Error("dock: --score-only / --local-only: the input pose is not inside the box");
    starts.push_back(topology.identity_pose());
  } else if (options.model.empty()) {
    for (int i = 0; i < options.num_poses; ++i) {
      std::mt19937_64 rng(mix_seed(options.seed ^ 0x5eedULL, static_cast<uint64_t>(i)));
      starts.push_back(random_pose(topology, box, rng));
    }
  } else {
    ProposalSettings settings{options.model, options.sampler, options.sample_steps,
                              options.guidance, options.seed, options.precision,
                              options.device};
    starts = model_starts(topology, ligand, pocket, grid, box, options.num_poses, settings);
  }
  result.proposal_seconds = lap();
  SearchSettings search;
  search.mc_steps = options.mode == "search" ? options.mc_steps : 0;
  if (options.mode == "score-only") search.local_iterations = 0;
  auto hits = search_poses(topology, grid, starts, search, options.seed, &result.evaluations);
  std::sort(hits.begin(), hits.end(),
            [](const SearchHit& a, const SearchHit& b) { return a.energy < b.energy; });
  result.search_seconds = lap();

  // Distinct poses (Vina's min_rmsd clustering), best first; a few more than asked for, so
  // that poses failing the checks can be ranked below valid ones.
  const size_t candidates = static_cast<size_t>(std::max(options.top * 2, options.top + 4));
  std::vector<std::vector<Vec3>> kept;
  std::vector<int> kept_start;
  for (const auto& h : hits) {
    if (kept.size() >= candidates) break;
    if (!std::isfinite(h.energy)) continue;
    auto coords = topology.coordinates(h.pose);
    bool distinct = true;
    for (const auto& k : kept)
      if (heavy_rmsd(topology, coords, k) < options.min_rmsd) {
        distinct = false;
        break;
      }
    if (distinct) kept.push_back(std::move(coords)), kept_start.push_back(h.start);
  }
  std::unique_ptr<PoseRefiner> refiner;
  if (options.refine == "openmm") {
    const auto r0 = std::chrono::steady_clock::now();
    try {
      std::string name;
      ligand.getPropIfPresent("_Name", name);
      refiner = std::make_unique<PoseRefiner>(
          pocket, ligand, RefineOptions{},
          fmt::format("ligand{} in {}", name.empty() ? "" : " '" + name + "'", receptor.source));
    } catch (const Error& e) {
      result.refine_skipped = e.what();  // the ligand is still docked, unrefined
    }
    result.refine_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
  } else if (options.refine != "none") {
    throw Error(fmt::format("dock: unknown refinement '{}' (none, openmm)", options.refine));
  }
  for (size_t i = 0; i < kept.size(); ++i) {
    DockedPose pose;
    pose.coordinates = kept[i];
    pose.start = kept_start[i];
    pose.search_rank = static_cast<int>(i);
    if (refiner) {
      const auto r0 = std::chrono::steady_clock::now();
      RefinedPose refined = refiner->refine(pose.coordinates);
      result.refine_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
      pose.coordinates = std::move(refined.coordinates);
      pose.mm_interaction = refined.interaction;
      pose.mm_strain = refined.strain;
      pose.refine_shift = refined.shift;
    }
    const auto report = score_pose(topology, pocket, pose.coordinates);
    pose.affinity = report.affinity;
    pose.inter = report.inter;
    pose.intra = report.intra;
    pose.terms = {report.inter_terms.gauss1, report.inter_terms.gauss2, report.inter_terms.repulsion,
                  report.inter_terms.hydrophobic, report.inter_terms.hbond};
    pose.rank_score = pose.affinity;
    if (refiner) pose.rank_score += options.refine_weight * (pose.mm_interaction + pose.mm_strain);
    if (options.run_checks) {
      const auto c0 = std::chrono::steady_clock::now();
      auto mol = pose_molecule(ligand, pose, 0);
      pose.checks = run_pose_checks({*mol, -1, &receptor});
      result.checks_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    }
    result.poses.push_back(std::move(pose));
  }
  std::stable_sort(result.poses.begin(), result.poses.end(), [&](const DockedPose& a, const DockedPose& b) {
    if (options.run_checks && a.checks.pb_valid() != b.checks.pb_valid()) return a.checks.pb_valid();
    return a.rank_score < b.rank_score;
  });
  if (static_cast<int>(result.poses.size()) > options.top) result.poses.resize(options.top);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

std::unique_ptr<RDKit::RWMol> pose_molecule(const RDKit::ROMol& ligand, const DockedPose& pose,
                                            int rank) {
  auto mol = std::make_unique<RDKit::RWMol>(ligand);
  if (pose.coordinates.size() != mol->getNumAtoms())
    throw Error(fmt::format("pose_molecule: pose has {} atoms, the ligand {}", pose.coordinates.size(),
                            mol->getNumAtoms()));
  auto* conf = new RDKit::Conformer(mol->getNumAtoms());
  conf->set3D(true);
  for (unsigned i = 0; i < mol->getNumAtoms(); ++i)
    conf->setAtomPos(i, RDGeom::Point3D(pose.coordinates[i][0], pose.coordinates[i][1], pose.coordinates[i][2]));
  mol->clearConformers();
  mol->addConformer(conf, true);
  mol->setProp("dit_rank", rank);
  mol->setProp("dit_affinity", pose.affinity);
  mol->setProp("dit_inter", pose.inter);
  mol->setProp("dit_intra", pose.intra);
  mol->setProp("dit_gauss1", pose.terms.gauss1);
  mol->setProp("dit_gauss2", pose.terms.gauss2);
  mol->setProp("dit_repulsion", pose.terms.repulsion);
  mol->setProp("dit_hydrophobic", pose.terms.hydrophobic);
  mol->setProp("dit_hbond", pose.terms.hbond);
  mol->setProp("dit_start", pose.start);
  mol->setProp("dit_search_rank", pose.search_rank);
  if (std::isfinite(pose.mm_interaction)) {
    mol->setProp("dit_mm_interaction", pose.mm_interaction);
    mol->setProp("dit_mm_strain", pose.mm_strain);
    mol->setProp("dit_refine_shift", pose.refine_shift);
    mol->setProp("dit_rank_score", pose.rank_score);
  }
  if (!pose.checks.values.empty()) {
    for (const auto& v : pose.checks.values) {
      mol->setProp("pb_" + v.name, v.value);
      mol->setProp("pb_" + v.name + "_pass", static_cast<int>(v.pass));
    }
    mol->setProp("pb_valid", static_cast<int>(pose.checks.pb_valid()));
  }
  return mol;
}

}  // namespace dit::docking
