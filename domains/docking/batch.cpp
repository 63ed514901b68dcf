// The docking domain in batch jobs: `domain = "docking"`, a virtual screen sharded over a SLURM
// array (or `--shard i/n`), resumable batch by batch like every batch job. Sample k is ligand
// record k of the library (the first `samples` records are docked).
//   [docking]
//   receptor = "receptor.pdb"       # PDB or mmCIF
//   ligands = "library.smi"         # SDF or SMILES file
//   box = [cx, cy, cz, sx, sy, sz]  # or autobox_ligand = "ref.sdf" (autobox_padding = 4.0)
//   num_poses = 24, mc_steps = 15, refine = "openmm", refine_weight = 0.02, guidance = 1.0,
//   pocket_cutoff = 8.0, max_heavy_atoms = 128, checks = true   (the dit dock defaults)
// The job's model ("" = the bundled docking model, "none" = physics only) and [sampler] (name,
// steps) drive the proposals. Ligand k is docked with seed mix_seed(job seed, k).
// Output per sample: the best pose in /particles/ligand (NaN for a ligand that failed), its
// bonds, /observables/{affinity, inter, intra, mm_interaction, mm_strain, rank_score, pb_valid,
// poses, heavy_atoms, docked}, and /samples/valid = docked with a PB-valid best pose.
#ifdef DIT_HAVE_JOBS
#include <ATen/Parallel.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/jobs.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <dit/fs.h>
#include <limits>
#include <map>

namespace dit::docking {
namespace {

constexpr int64_t kAtomCapacity = 384;  // as PoseWriter's H5MD
constexpr int64_t kBondCapacity = 400;

class DockingBatchDomain : public jobs::BatchDomain {
 public:
  void configure(const jobs::Job& job) override {
    const std::string where = fmt::format("{}: [docking]", job.path);
    const auto& o = job.domain_options;
    auto number = [&](const char* key, double fallback, double lo, double hi) {
      if (!o.contains(key)) return fallback;
      const auto& v = o[key];
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo || v.get<double>() > hi)
        throw Error(fmt::format("{} {}: must be a number in [{}, {}], got {}", where, key, lo, hi, v.dump()));
      return v.get<double>();
    };
    auto integer = [&](const char* key, int fallback, int lo, int hi) {
      if (!o.contains(key)) return fallback;
      const auto& v = o[key];
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
        throw Error(fmt::format("{} {}: must be an integer in {}..{}, got {}", where, key, lo, hi, v.dump()));
      return static_cast<int>(v.get<int64_t>());
    };
    auto text = [&](const char* key, bool required) {
      if (!o.contains(key)) {
        if (required) throw Error(fmt::format("{} {}: missing", where, key));
        return std::string();
      }
      if (!o[key].is_string() || o[key].get<std::string>().empty())
        throw Error(fmt::format("{} {}: must be a non-empty string", where, key));
      return o[key].get<std::string>();
    };
    static const std::vector<std::string> known = {
        "receptor", "ligands", "box", "autobox_ligand", "autobox_padding", "num_poses", "mc_steps",
        "refine", "refine_weight", "population_weight", "model_weight", "model_score_draws", "guidance", "pocket_cutoff", "max_heavy_atoms", "checks"};
    for (const auto& [key, value] : o.items())
      if (std::find(known.begin(), known.end(), key) == known.end())
        throw Error(fmt::format("{} {}: unknown key in [docking]", where, key));

    receptor_path_ = text("receptor", true);
    ligands_path_ = text("ligands", true);
    if (!dit::fs::is_regular_file(receptor_path_))
      throw Error(fmt::format("{} receptor: {}: file not found", where, receptor_path_));
    if (!dit::fs::is_regular_file(ligands_path_))
      throw Error(fmt::format("{} ligands: {}: file not found", where, ligands_path_));
    Box box;
    std::string box_source;
    if (o.contains("box") == o.contains("autobox_ligand"))
      throw Error(fmt::format("{}: give exactly one of box = [cx, cy, cz, sx, sy, sz] and autobox_ligand", where));
    if (o.contains("box")) {
      const auto& b = o["box"];
      if (!b.is_array() || b.size() != 6)
        throw Error(fmt::format("{} box: must be [cx, cy, cz, sx, sy, sz] (angstrom), got {}", where, b.dump()));
      for (size_t i = 0; i < 6; ++i) {
        if (!b[i].is_number()) throw Error(fmt::format("{} box: element {} is not a number", where, i + 1));
        (i < 3 ? box.center : box.size)[i % 3] = b[i].get<double>();
      }
      box_source = where + " box";
    } else {
      const std::string reference = text("autobox_ligand", true);
      box = box_around(*read_ligand(reference), number("autobox_padding", 4.0, 0.0, 20.0));
      box_source = where + " autobox_ligand " + reference;
    }
    box.validate(box_source);

    options_.num_poses = integer("num_poses", options_.num_poses, 1, 4096);
    options_.mc_steps = integer("mc_steps", options_.mc_steps, 0, 10000);
    options_.refine_weight = number("refine_weight", options_.refine_weight, 0.0, 100.0);
    options_.population_weight = number("population_weight", options_.population_weight, 0.0, 100.0);
    options_.model_weight = number("model_weight", options_.model_weight, 0.0, 100.0);
    options_.model_score_draws = integer("model_score_draws", options_.model_score_draws, 1, 1024);
    options_.guidance = number("guidance", options_.guidance, 0.0, 100.0);
    options_.pocket_cutoff = number("pocket_cutoff", options_.pocket_cutoff, 0.0, 30.0);
    limits_.max_heavy_atoms = integer("max_heavy_atoms", limits_.max_heavy_atoms, 1, 256);
    if (o.contains("refine")) {
      options_.refine = text("refine", false);
      if (options_.refine != "openmm" && options_.refine != "none")
        throw Error(fmt::format("{} refine: must be \"openmm\" or \"none\", got \"{}\"", where, options_.refine));
    }
    if (o.contains("checks")) {
      if (!o["checks"].is_boolean()) throw Error(fmt::format("{} checks: must be true or false", where));
      options_.run_checks = o["checks"].get<bool>();
    }
    if (job.model == "none") {
      options_.model.clear();
    } else if (!job.model.empty()) {
      options_.model = job.model;
    } else {
      const std::string bundled = data_dir() + "/models/dock-dit.safetensors";
      if (dit::fs::is_regular_file(bundled)) options_.model = bundled;
    }
    options_.sampler = job.sampler.name;
    options_.sample_steps = job.sampler.options.steps;
    options_.device = job.device;
    options_.precision = job.dtype;
    resolve_device(job.device, job.path + ": device");

    target_ = std::make_unique<DockingTarget>(read_receptor(receptor_path_), box, options_.pocket_cutoff,
                                              box_source);
    // Every record is parsed once (cheap, unprepared): its size schedules the batches, and a
    // batch takes its records from here.
    reader_ = std::make_unique<LigandReader>(LigandReader::from_file(ligands_path_, job.seed, limits_));
    LigandRecord record;
    while (static_cast<int64_t>(records_.size()) < job.samples && reader_->next_unprepared(record)) {
      int64_t heavy = 1;
      if (record.raw) {
        heavy = 0;
        for (const auto* atom : record.raw->atoms()) heavy += atom->getAtomicNum() > 1;
      }
      tokens_.push_back(std::max<int64_t>(heavy, 1));
      records_.push_back(std::move(record));
    }
    if (static_cast<int64_t>(records_.size()) < job.samples)
      throw Error(fmt::format("{}: samples = {}, but {} holds {} ligand records", job.path, job.samples,
                              ligands_path_, records_.size()));
    seed_ = job.seed;
  }

  int64_t tokens(int64_t sample) const override { return tokens_.at(static_cast<size_t>(sample)); }

  std::vector<std::string> describe() const override {
    const auto& b = target_->box();
    return {fmt::format("receptor {} ({} atoms, {} in the pocket)", receptor_path_,
                        target_->receptor().atoms.size(), target_->pocket().atoms.size()),
            fmt::format("ligands {} (sample k = record k)", ligands_path_),
            fmt::format("box {:.2f},{:.2f},{:.2f} size {:.1f}x{:.1f}x{:.1f}", b.center[0], b.center[1],
                        b.center[2], b.size[0], b.size[1], b.size[2]),
            fmt::format("starts: {} ({} x {} steps), {} starts, {} MC steps, refine {}",
                        options_.model.empty() ? "random (physics only)" : options_.model,
                        options_.sampler, options_.sample_steps, options_.num_poses, options_.mc_steps,
                        options_.refine)};
  }

  nlohmann::json parameters() const override {
    const auto& b = target_->box();
    return {{"model", {{"path", options_.model.empty() ? "none" : options_.model}}},
            {"docking",
             {{"receptor", receptor_path_}, {"ligands", ligands_path_},
              {"box", {b.center[0], b.center[1], b.center[2], b.size[0], b.size[1], b.size[2]}},
              {"num_poses", options_.num_poses}, {"mc_steps", options_.mc_steps},
              {"refine", options_.refine}, {"refine_weight", options_.refine_weight},
              {"population_weight", options_.population_weight},
              {"model_weight", options_.model_weight}, {"model_score_draws", options_.model_score_draws},
              {"guidance", options_.guidance}, {"pocket_cutoff", options_.pocket_cutoff},
              {"max_heavy_atoms", limits_.max_heavy_atoms}, {"checks", options_.run_checks},
              {"sample_steps", options_.sample_steps},
              {"pose", "the best pose of each ligand (rank 1); NaN positions when it failed"}}}};
  }

  void create_output(h5md::File& file) const override {
    h5md::define_particle_group(file, {"ligand", kAtomCapacity, "none", kBondCapacity});
    file.set_attribute("observables", "units",
                       "affinity, inter, intra, mm_interaction, mm_strain, rank_score: kcal/mol");
  }

  std::vector<bool> run_batch(const jobs::Batch& batch, h5md::File& file, Progress&) override {
    // The batch's ligands, docked `threads` at a time (one per thread), collected by sample.
    size_t next = 0;
    auto read = [&](LigandRecord& record) {
      if (next == batch.size()) return false;
      const auto& stored = records_.at(static_cast<size_t>(batch[next++]));
      record = LigandRecord{};
      record.index = stored.index;
      record.name = stored.name;
      record.where = stored.where;
      record.error = stored.error;
      if (stored.raw) record.raw = std::make_unique<RDKit::ROMol>(*stored.raw);
      return true;
    };
    std::map<int64_t, ScreenedLigand> done;
    dock_records(*target_, *reader_, read, options_, at::get_num_threads(),
                 [&](ScreenedLigand& item) {
                   if (!item.error.empty())
                     fmt::print(stderr, "sample {}: ligand failed: {}\n", item.index, item.error);
                   done.emplace(item.index, std::move(item));
                   return true;
                 },
                 nullptr, [this](int64_t k) { return mix_seed(seed_, static_cast<uint64_t>(k)); });

    const auto n = static_cast<int64_t>(batch.size());
    std::vector<h5md::StructureSample> samples;
    std::map<std::string, std::vector<double>> obs;
    std::vector<bool> valid(batch.size(), false);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t i = 0; i < n; ++i) {
      const auto& item = done.at(batch[i]);
      const bool docked = item.error.empty() && !item.result.poses.empty();
      h5md::StructureSample s;
      s.index = batch[i];
      if (docked) {
        const auto& pose = item.result.poses.front();
        const auto& mol = *item.mol;
        const int64_t A = static_cast<int64_t>(pose.coordinates.size());
        if (A > kAtomCapacity || static_cast<int64_t>(mol.getNumBonds()) > kBondCapacity)
          throw Error(fmt::format("sample {}: {} atoms / {} bonds, more than the H5MD capacity {} / {}",
                                  batch[i], A, mol.getNumBonds(), kAtomCapacity, kBondCapacity));
        s.positions = torch::empty({A, 3}, torch::kFloat32);
        s.species = torch::empty({A}, torch::kInt64);
        for (int64_t a = 0; a < A; ++a) {
          for (int k = 0; k < 3; ++k) s.positions[a][k] = static_cast<float>(pose.coordinates[a][k]);
          s.species[a] = static_cast<int64_t>(mol.getAtomWithIdx(static_cast<unsigned>(a))->getAtomicNum());
        }
        s.bonds = torch::empty({static_cast<int64_t>(mol.getNumBonds()), 2}, torch::kInt64);
        for (const auto* b : mol.bonds()) {
          s.bonds[b->getIdx()][0] = static_cast<int64_t>(b->getBeginAtomIdx());
          s.bonds[b->getIdx()][1] = static_cast<int64_t>(b->getEndAtomIdx());
        }
        valid[i] = !options_.run_checks || pose.checks.pb_valid();
      } else {
        s.positions = torch::empty({0, 3}, torch::kFloat32);
        s.species = torch::empty({0}, torch::kInt64);
        s.bonds = torch::empty({0, 2}, torch::kInt64);
      }
      const DockedPose* best = docked ? &item.result.poses.front() : nullptr;
      obs["affinity"].push_back(best ? best->affinity : nan);
      obs["inter"].push_back(best ? best->inter : nan);
      obs["intra"].push_back(best ? best->intra : nan);
      obs["mm_interaction"].push_back(best ? best->mm_interaction : nan);
      obs["mm_strain"].push_back(best ? best->mm_strain : nan);
      obs["rank_score"].push_back(best ? best->rank_score : nan);
      obs["pb_valid"].push_back(best && options_.run_checks ? static_cast<double>(best->checks.pb_valid()) : nan);
      obs["poses"].push_back(docked ? static_cast<double>(item.result.poses.size()) : 0.0);
      obs["heavy_atoms"].push_back(static_cast<double>(tokens_.at(static_cast<size_t>(batch[i]))));
      obs["docked"].push_back(docked ? 1.0 : 0.0);
      samples.push_back(std::move(s));
    }
    h5md::append_structures(file, {"ligand", kAtomCapacity, "none", kBondCapacity}, samples);
    const auto index = torch::tensor(batch, torch::kInt64);
    for (auto& [name, values] : obs) {
      auto t = torch::tensor(values, torch::kFloat64);
      if (name == "poses" || name == "heavy_atoms" || name == "docked") t = t.to(torch::kInt64);
      h5md::append_observable(file, name, t, index);
    }
    return valid;
  }

 private:
  std::string receptor_path_, ligands_path_;
  DockOptions options_;
  LigandLimits limits_;
  uint64_t seed_ = 0;
  std::unique_ptr<DockingTarget> target_;
  std::unique_ptr<LigandReader> reader_;
  std::vector<LigandRecord> records_;
  std::vector<int64_t> tokens_;
};

}  // namespace

DIT_REGISTER_BATCH_DOMAIN("docking", DockingBatchDomain);

}  // namespace dit::docking
#endif  // DIT_HAVE_JOBS
