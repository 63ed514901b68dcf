// dock(): starting poses (random or sampled by the model) -> Monte Carlo + L-BFGS on the
// Vina-like score -> distinct poses -> exact score terms and PoseBusters checks -> ranking.
#include <GraphMol/Conformer.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

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

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
ProposalSettings proposal_settings(const DockOptions& o) {
  return {o.model, o.sampler, o.sample_steps, o.guidance, o.seed, o.precision, o.device};
}
// Adds the seconds its scope takes to `sum` (a stage that runs in pieces).
struct AddSeconds {
  double& sum;
  Clock::time_point start = Clock::now();
  ~AddSeconds() { sum += seconds_since(start); }
};
}  // namespace

struct DockingTarget::Impl {
  Receptor receptor, pocket;
  Box box;
  double cutoff = 0;
  std::unique_ptr<GridMaps> maps;
};

DockingTarget::DockingTarget(Receptor receptor, const Box& box, double pocket_cutoff,
                             const std::string& what)
    : impl_(std::make_unique<Impl>()) {
  box.validate("dock: " + what);
  impl_->pocket = box_pocket(receptor, box, pocket_cutoff, what);
  impl_->receptor = std::move(receptor);
  impl_->box = box;
  impl_->cutoff = pocket_cutoff;
  impl_->maps = std::make_unique<GridMaps>(impl_->pocket, box);
}
DockingTarget::~DockingTarget() = default;
const Receptor& DockingTarget::receptor() const { return impl_->receptor; }
const Receptor& DockingTarget::pocket() const { return impl_->pocket; }
const Box& DockingTarget::box() const { return impl_->box; }
double DockingTarget::pocket_cutoff() const { return impl_->cutoff; }
int DockingTarget::grid_maps_computed() const { return impl_->maps->computed(); }

DockResult dock(const Receptor& receptor, const RDKit::ROMol& ligand, const Box& box,
                const DockOptions& options) {
  const auto t0 = Clock::now();
  box.validate("dock: --box");
  const DockingTarget target(receptor, box, options.pocket_cutoff);
  DockResult result = dock(target, ligand, options);
  result.seconds = seconds_since(t0);  // with the target's pocket and maps
  return result;
}

DockResult dock(const DockingTarget& target, const RDKit::ROMol& ligand, const DockOptions& options) {
  const auto t0 = Clock::now();
  if (options.num_poses < 1) throw Error("dock: the number of poses (-n) must be at least 1");
  if (options.top < 1) throw Error("dock: --top must be at least 1");
  if (options.pocket_cutoff != target.pocket_cutoff())
    throw Error(fmt::format("dock: the options' pocket cutoff {} A is not the target's {} A",
                            options.pocket_cutoff, target.pocket_cutoff()));
  const Receptor& receptor = target.receptor();
  const Receptor& pocket = target.pocket();
  const Box& box = target.box();
  const LigandTopology topology = build_topology(ligand);
  const ReceptorGrid grid(*target.impl().maps, topology.heavy_type);

  DockResult result;
  result.num_rotatable = topology.num_rotatable();
  // Stage timings: the starting poses, then the search.
  auto lap = [last = Clock::now()]() mutable {
    const double s = seconds_since(last);
    last = Clock::now();
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
    starts = model_starts(topology, ligand, pocket, grid, box, options.num_poses, proposal_settings(options));
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
  std::vector<std::vector<Vec3>> hit_coords;  // every hit's atoms, for clustering and populations
  hit_coords.reserve(hits.size());
  for (const auto& h : hits) hit_coords.push_back(topology.coordinates(h.pose));
  std::vector<std::vector<Vec3>> kept;
  std::vector<int> kept_start;
  for (size_t j = 0; j < hits.size(); ++j) {
    const auto& h = hits[j];
    if (kept.size() >= candidates) break;
    if (!std::isfinite(h.energy)) continue;
    const auto& coords = hit_coords[j];
    bool distinct = true;
    for (const auto& k : kept)
      if (heavy_rmsd(topology, coords, k) < options.min_rmsd) {
        distinct = false;
        break;
      }
    if (distinct) kept.push_back(coords), kept_start.push_back(h.start);
  }
  // Each kept pose's population: the starts with a local minimum within population_rmsd of it.
  std::vector<int> population(kept.size(), 0);
  for (size_t i = 0; i < kept.size(); ++i) {
    std::vector<char> visited(starts.size(), 0);
    for (size_t j = 0; j < hits.size(); ++j)
      if (!visited[static_cast<size_t>(hits[j].start)] &&
          heavy_rmsd(topology, hit_coords[j], kept[i]) < options.population_rmsd)
        visited[static_cast<size_t>(hits[j].start)] = 1;
    population[i] = static_cast<int>(std::count(visited.begin(), visited.end(), 1));
  }
  std::unique_ptr<PoseRefiner> refiner;
  if (options.refine == "openmm") {
    AddSeconds timer{result.refine_seconds};
    try {
      std::string name;
      ligand.getPropIfPresent("_Name", name);
      refiner = std::make_unique<PoseRefiner>(
          pocket, ligand, RefineOptions{},
          fmt::format("ligand{} in {}", name.empty() ? "" : " '" + name + "'", receptor.source));
    } catch (const Error& e) {
      result.refine_skipped = e.what();  // the ligand is still docked, unrefined
    }
  } else if (options.refine != "none") {
    throw Error(fmt::format("dock: unknown refinement '{}' (none, openmm)", options.refine));
  }
  for (size_t i = 0; i < kept.size(); ++i) {
    DockedPose pose;
    pose.coordinates = kept[i];
    pose.start = kept_start[i];
    pose.search_rank = static_cast<int>(i);
    pose.population = std::max(population[i], 1);
    if (refiner) {
      AddSeconds timer{result.refine_seconds};
      RefinedPose refined = refiner->refine(pose.coordinates);
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
    pose.rank_score -= options.population_weight * std::log(static_cast<double>(pose.population));
    if (options.run_checks) {
      AddSeconds timer{result.checks_seconds};
      auto mol = pose_molecule(ligand, pose, 0);
      pose.checks = run_pose_checks({*mol, -1, &receptor});
    }
    result.poses.push_back(std::move(pose));
  }
  if ((options.model_score || options.model_weight != 0) && !options.model.empty() && !result.poses.empty()) {
    AddSeconds timer{result.model_score_seconds};
    std::vector<std::vector<Vec3>> coords;
    for (const auto& pose : result.poses) coords.push_back(pose.coordinates);
    const auto losses = model_pose_losses(topology, ligand, pocket, box, coords, proposal_settings(options),
                                          options.model_score_draws);
    for (size_t i = 0; i < result.poses.size(); ++i) {
      result.poses[i].model_loss = losses[i];
      result.poses[i].rank_score += options.model_weight * losses[i];
    }
  }
  std::stable_sort(result.poses.begin(), result.poses.end(), [&](const DockedPose& a, const DockedPose& b) {
    if (options.run_checks && a.checks.pb_valid() != b.checks.pb_valid()) return a.checks.pb_valid();
    return a.rank_score < b.rank_score;
  });
  if (static_cast<int>(result.poses.size()) > options.top) result.poses.resize(options.top);
  result.seconds = seconds_since(t0);
  return result;
}

namespace {
// Prepares and docks one record; failures become the item's `error`.
ScreenedLigand dock_record(const DockingTarget& target, const LigandReader& reader,
                           LigandRecord& record, DockOptions options,
                           const std::function<uint64_t(int64_t)>& seed_of) {
  if (seed_of) options.seed = seed_of(record.index);
  reader.prepare(record);
  ScreenedLigand item;
  item.index = record.index;
  item.name = record.name;
  item.mol = std::move(record.mol);
  item.error = record.error;
  if (item.mol) {
    try {
      item.result = dock(target, *item.mol, options);
    } catch (const std::exception& e) {
      item.error = fmt::format("{}: {}", record.where.empty() ? record.name : record.where, e.what());
    }
  }
  return item;
}
}  // namespace

int64_t dock_stream(const DockingTarget& target, LigandReader& reader, const DockOptions& options,
                    int workers, int64_t first, const std::function<bool(ScreenedLigand&)>& done,
                    const std::atomic<bool>* stop) {
  // The next record at or after `first` (records before it are skipped unprepared).
  auto read = [&](LigandRecord& record) {
    while (reader.next_unprepared(record))
      if (record.index >= first) return true;
    return false;
  };
  return dock_records(target, reader, read, options, workers, done, stop);
}

int64_t dock_records(const DockingTarget& target, const LigandReader& preparer,
                     const std::function<bool(LigandRecord&)>& read, const DockOptions& options,
                     int workers, const std::function<bool(ScreenedLigand&)>& done,
                     const std::atomic<bool>* stop, const std::function<uint64_t(int64_t)>& seed_of) {
  const LigandReader& reader = preparer;
  auto stopped = [stop] { return stop && stop->load(); };
  int64_t handed = 0;
  if (workers <= 1) {
    LigandRecord record;
    while (!stopped() && read(record)) {
      auto item = dock_record(target, reader, record, options, seed_of);
      ++handed;
      if (!done(item)) break;
    }
    return handed;
  }

  // Workers take records in input order (under the lock), dock them single-threaded and park
  // the results; this thread hands them to `done` in order. At most 4 x workers ligands are
  // ahead of the one `done` waits for.
  const int saved_threads = at::get_num_threads();
  std::mutex mutex;
  std::condition_variable changed;
  std::map<int64_t, ScreenedLigand> ready;
  int64_t dispatched = 0, emitted = 0;
  bool input_done = false, halt = false;
  int active = workers;
  const int64_t window = 4 * static_cast<int64_t>(workers);
  auto work = [&] {
    at::set_num_threads(1);  // this thread's intra-op pool (the search's starts, the model)
    for (;;) {
      LigandRecord record;
      int64_t seq = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return halt || input_done || dispatched - emitted < window; });
        if (halt || input_done || stopped()) break;
        bool more = false;
        try {
          more = read(record);
        } catch (...) {
          more = false;  // LigandReader reports bad records in `error`; a failing stream ends input
        }
        if (!more) {
          input_done = true;
          changed.notify_all();
          break;
        }
        seq = dispatched++;
      }
      auto item = dock_record(target, reader, record, options, seed_of);
      {
        std::lock_guard<std::mutex> lock(mutex);
        ready.emplace(seq, std::move(item));
      }
      changed.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      --active;
    }
    changed.notify_all();
  };
  std::vector<std::thread> threads;
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      halt = true;
    }
    changed.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    at::set_num_threads(saved_threads);
  };
  try {
    for (int w = 0; w < workers; ++w) threads.emplace_back(work);
    bool go = true;
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return ready.count(emitted) > 0 || active == 0; });
      auto it = ready.find(emitted);
      if (it == ready.end()) break;  // every worker has ended and every result was handed over
      ScreenedLigand item = std::move(it->second);
      ready.erase(it);
      ++emitted;
      lock.unlock();
      changed.notify_all();
      ++handed;
      const bool more = done(item);
      if (go && !more) {
        go = false;
        std::lock_guard<std::mutex> hold(mutex);
        halt = true;  // no new ligand; those in flight are still handed over
      }
      if (!go) changed.notify_all();
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  return handed;
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
  mol->setProp("dit_population", pose.population);
  if (std::isfinite(pose.mm_interaction)) {
    mol->setProp("dit_mm_interaction", pose.mm_interaction);
    mol->setProp("dit_mm_strain", pose.mm_strain);
    mol->setProp("dit_refine_shift", pose.refine_shift);
  }
  if (std::isfinite(pose.model_loss)) {
    mol->setProp("dit_model_loss", pose.model_loss);
  }
  mol->setProp("dit_rank_score", pose.rank_score);
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
