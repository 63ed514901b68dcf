// dit dock: ligand poses in a protein pocket. One ligand (--smiles, or a one-record file) or a
// virtual screen (--ligand many.sdf, streamed): each ligand is prepared, docked, checked and
// written as it completes; a ligand that fails is logged with the reason and skipped.
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <dit/fs.h>

#include "commands.h"

namespace dit::cli {

namespace {
struct DockArgs {
  std::string receptor, ligand, smiles, box, autobox_ligand, output = "poses.sdf", h5, summary;
  std::string model = "default", sampler = "euler", refine = "openmm";
  Placement placement;  // --device, --dtype (the proposal model)
  int num_poses = 24, top = 5, threads = 0, steps = 10, mc_steps = 15, max_heavy = 128;
  double guidance = 1.0, autobox_padding = 4.0, pocket_cutoff = 8.0, refine_weight = 0.02,
         population_weight = 0.0, model_weight = 0.0;
  int score_draws = 8;
  uint64_t seed = 1234;
  bool no_checks = false, quiet = false, score_only = false, local_only = false, model_score = false;
};

std::string resolve_model(const std::string& requested) {
  if (requested == "none") return "";
  if (requested != "default") {
    if (!dit::fs::is_regular_file(requested))
      throw Error(fmt::format("--model {}: file not found", requested));
    return requested;
  }
  const std::string bundled = data_dir() + "/models/dock-dit.safetensors";
  return dit::fs::is_regular_file(bundled) ? bundled : "";
}

void run_dock(const DockArgs& a) {
  const int threads = set_threads(a.threads);
  auto receptor = docking::read_receptor(a.receptor);
  docking::Box box;
  if (!a.box.empty()) {
    box = docking::Box::parse(a.box, "--box");
  } else {
    auto reference = docking::read_ligand(a.autobox_ligand);
    box = docking::box_around(*reference, a.autobox_padding);
    box.validate("--autobox-ligand " + a.autobox_ligand);
  }
  docking::DockOptions options;
  options.num_poses = a.num_poses;
  options.top = a.top;
  options.seed = a.seed;
  options.mc_steps = a.mc_steps;
  options.pocket_cutoff = a.pocket_cutoff;
  options.run_checks = !a.no_checks;
  options.mode = a.score_only ? "score-only" : a.local_only ? "local-only" : "search";
  options.model = resolve_model(a.model);
  options.sampler = a.sampler;
  options.sample_steps = a.steps;
  options.guidance = a.guidance;
  options.precision = a.placement.dtype;
  options.device = a.placement.device;
  options.refine = a.refine;
  options.refine_weight = a.refine_weight;
  options.population_weight = a.population_weight;
  options.model_score = a.model_score;
  options.model_weight = a.model_weight;
  options.model_score_draws = a.score_draws;
  resolve_device(a.placement.device);  // a GPU that is not there fails now, before any work
  // The pocket and grid maps are made once for every ligand; a box away from the protein fails
  // here, before any ligand is read.
  const std::string box_source = a.box.empty() ? "--autobox-ligand " + a.autobox_ligand : "--box";
  const docking::DockingTarget target(std::move(receptor), box, a.pocket_cutoff, box_source);
  docking::LigandLimits limits;
  limits.max_heavy_atoms = a.max_heavy;
  const bool screen = a.smiles.empty();  // a ligand file: one ligand or a whole library
  auto reader = screen ? docking::LigandReader::from_file(a.ligand, a.seed, limits)
                       : docking::LigandReader::from_smiles(a.smiles, "ligand", a.seed, limits);
  auto file_size = [](const std::string& path) {
    std::error_code ec;
    const auto n = dit::fs::file_size(path, ec);
    return ec ? int64_t{-1} : static_cast<int64_t>(n);
  };
  // Everything that decides the poses (a resumed screen must match it; threads do not matter).
  nlohmann::json params = {
      {"receptor", a.receptor}, {"receptor_bytes", file_size(a.receptor)},
      {"ligand", screen ? a.ligand : a.smiles}, {"ligand_bytes", screen ? file_size(a.ligand) : int64_t{0}},
      {"box", {box.center[0], box.center[1], box.center[2], box.size[0], box.size[1], box.size[2]}},
      {"model", options.model.empty() ? "none (physics only: random starting poses)" : options.model},
      {"sampler", options.sampler}, {"sample_steps", options.sample_steps},
      {"guidance", options.guidance}, {"seed", a.seed}, {"num_poses", a.num_poses},
      {"top", a.top}, {"mc_steps", a.mc_steps}, {"refine", a.refine},
      {"refine_weight", a.refine_weight}, {"population_weight", a.population_weight},
      {"model_weight", a.model_weight}, {"model_score_draws", a.score_draws},
      {"pocket_cutoff", a.pocket_cutoff},
      {"max_heavy_atoms", a.max_heavy}, {"checks", !a.no_checks}, {"mode", options.mode},
      {"dtype", a.placement.dtype}, {"version", version_string()}};
  // A ligand file is screened resumably: OUT.partial files and a journal, continued by a rerun.
  docking::PoseWriter writer(a.output, a.h5, params.dump(), screen);
  // One ligand per thread for a library; a file with fewer ligands than threads (a single ligand,
  // most often) is docked one ligand at a time with every thread inside it, so that one ligand
  // uses every core (physics-only poses are the same for any thread count; the model's matrix
  // products may round differently, docs/docking.md "Screening").
  int workers = 1;
  if (screen) {
    auto peek = docking::LigandReader::from_file(a.ligand, a.seed, limits);
    docking::LigandRecord record;
    int records = 0;
    while (records < threads && peek.next_unprepared(record)) ++records;
    if (records >= threads) workers = threads;
  }
  if (!a.quiet) {
    fmt::print(stderr, "dit dock: receptor {} ({} atoms), box {:.2f},{:.2f},{:.2f} size {:.1f}x{:.1f}x{:.1f}, "
               "starts: {}\n", a.receptor, target.receptor().atoms.size(), box.center[0], box.center[1],
               box.center[2], box.size[0], box.size[1], box.size[2],
               options.model.empty() ? "random (physics only)" : options.model);
    if (writer.resumed() > 0)
      fmt::print(stderr, "dit dock: resuming an interrupted screen: {} ligands already done\n", writer.resumed());
    if (workers > 1) fmt::print(stderr, "dit dock: {} ligands at a time, one per thread\n", workers);
  }
  const int64_t first = writer.journal().empty() ? 0 : writer.journal().back().index + 1;
  const auto started = std::chrono::steady_clock::now();  // for ligands/min of a screen
  StopOnSignal stop_on_signal;
  const int64_t handled = docking::dock_stream(
      target, reader, options, workers, first,
      [&](docking::ScreenedLigand& item) {
        if (!item.error.empty()) {
          fmt::print(stderr, "dit dock: skipped: {}\n", item.error);
          writer.write_failure(item.index, item.name, item.error);
          return true;
        }
        const auto& result = item.result;
        writer.write(item.index, item.name, *item.mol, result);
        if (!result.refine_skipped.empty())
          fmt::print(stderr, "dit dock: {}: not refined: {}\n", item.name, result.refine_skipped);
        if (!a.quiet) {
          const auto& e = writer.journal().back();
          fmt::print(stderr, "dit dock: {} ({} rotatable bonds): best {:.2f} kcal/mol, {}/{} PB-valid, {:.1f} s "
                     "(proposals {:.1f}, search {:.1f}, refinement {:.1f}, checks {:.1f}{})\n",
                     item.name, result.num_rotatable, e.best_affinity, e.valid, e.poses, result.seconds,
                     result.proposal_seconds, result.search_seconds, result.refine_seconds,
                     result.checks_seconds,
                     options.model_score || options.model_weight != 0
                         ? fmt::format(", model score {:.1f}", result.model_score_seconds)
                         : std::string());
        }
        return true;
      },
      &StopOnSignal::flag());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto& rows = writer.journal();
  const auto failed = std::count_if(rows.begin(), rows.end(), [](const auto& r) { return r.status != "ok"; });
  if (stop_on_signal.requested()) {
    writer.keep();
    throw Error(fmt::format("interrupted after {} ligands ({} this run): {} kept; rerun the same command "
                            "to resume", rows.size(), handled, a.output + ".partial"));
  }
  if (rows.empty()) throw Error(fmt::format("{}: no ligands in the input", a.ligand));
  if (rows.size() == 1 && failed == 1) throw Error(rows.front().status);  // a single ligand: fatal
  if (failed == static_cast<int64_t>(rows.size()))
    throw Error(fmt::format("all {} ligands failed", rows.size()));
  writer.commit();

  std::string table = fmt::format("{:<24} {:>10} {:>8} {:>9} {:>8}  {}\n", "ligand", "best", "poses",
                                  "PB-valid", "time_s", "status");
  for (const auto& r : rows)
    table += fmt::format("{:<24} {:>10.2f} {:>8} {:>9} {:>8.1f}  {}\n", r.name.substr(0, 24), r.best_affinity,
                         r.poses, fmt::format("{}/{}", r.valid, r.poses), r.seconds,
                         r.status == "ok" ? (r.best_valid ? "ok" : "ok (best pose not PB-valid)") : "skipped");
  if (!a.quiet) fmt::print("{}", table);
  if (!a.summary.empty()) write_file_atomic(a.summary, table);
  const double minutes = seconds / 60.0;
  fmt::print(stderr, "dit dock: {} ligands docked, {} skipped{} in {:.1f} s ({:.1f} ligands/min, {} at a time); "
             "{} poses -> {}{}\n", rows.size() - failed, failed,
             writer.resumed() ? fmt::format(" ({} of them by an earlier run)", writer.resumed()) : "",
             seconds, minutes > 0 ? handled / minutes : 0.0, workers, writer.poses_written(), a.output,
             a.h5.empty() ? "" : " and " + a.h5);
}
}  // namespace

void add_dock(CLI::App& app) {
  auto args = std::make_shared<DockArgs>();
  auto* cmd = app.add_subcommand("dock", "Dock ligands into a protein pocket (flow-matching DiT starts, "
                                         "Vina-like score, PoseBusters checks)");
  cmd->add_option("--receptor", args->receptor, "Protein (PDB or mmCIF, waters are removed)")
      ->required()->check(CLI::ExistingFile);
  auto* lig = cmd->add_option("--ligand", args->ligand, "Ligand(s): SDF (streamed; many = screening) or .smi");
  auto* smi = cmd->add_option("--smiles", args->smiles, "One ligand as SMILES (3D conformer by ETKDG)");
  lig->excludes(smi);
  auto* box = cmd->add_option("--box", args->box, "Search box cx,cy,cz,sx,sy,sz (angstrom)");
  auto* autobox = cmd->add_option("--autobox-ligand", args->autobox_ligand,
                                  "Box around this reference ligand (SDF), padded by --autobox-padding");
  box->excludes(autobox);
  cmd->add_option("--autobox-padding", args->autobox_padding, "Padding around --autobox-ligand (A)")
      ->capture_default_str();
  cmd->add_option("-n,--num-poses", args->num_poses, "Starting poses per ligand")->capture_default_str();
  cmd->add_option("--top", args->top, "Poses written per ligand")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Ranked poses (SDF with score and check SD tags)")
      ->capture_default_str();
  cmd->add_option("--h5", args->h5, "Also write poses in H5MD layout (HDF5)");
  cmd->add_option("--summary", args->summary, "Write the per-ligand summary table here");
  cmd->add_option("--model", args->model,
                  "Docking model (safetensors); 'default' = the bundled one if present, 'none' = "
                  "physics only (uniform random starting poses)")->capture_default_str();
  cmd->add_option("--sampler", args->sampler, "Flow-matching sampler for the model")->capture_default_str();
  cmd->add_option("--steps", args->steps, "Sampler steps")->capture_default_str();
  cmd->add_option("--guidance", args->guidance, "Score-gradient guidance weight during sampling (0: off)")
      ->capture_default_str();
  cmd->add_option("--refine", args->refine, "Physics refinement of the candidate poses: none, or openmm (MMFF94 ligand minimised in the rigid Amber ff14SB pocket)")
      ->capture_default_str()->check(CLI::IsMember({"none", "openmm"}));
  cmd->add_option("--refine-weight", args->refine_weight, "With --refine openmm: rank by affinity + W x (interaction + strain)")
      ->capture_default_str();
  cmd->add_option("--population-weight", args->population_weight,
                  "Rank by ... - W x ln(population): the starts whose search visited the pose (within 2 A)")
      ->capture_default_str();
  cmd->add_option("--model-weight", args->model_weight,
                  "With a model: rank by ... + W x the model's flow-matching loss of the pose (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--model-score", args->model_score,
               "With a model: report each pose's model loss (SD tag dit_model_loss) without ranking by it");
  cmd->add_option("--model-score-draws", args->score_draws,
                  "Draws (time, noise, rotation of the complex) averaged into the model's loss of a pose")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--mc-steps", args->mc_steps, "Monte Carlo steps per start (each followed by L-BFGS)")
      ->capture_default_str();
  cmd->add_option("--pocket-cutoff", args->pocket_cutoff, "Receptor atoms kept within this distance of the box (A)")
      ->capture_default_str();
  cmd->add_option("--max-heavy-atoms", args->max_heavy, "Refuse larger ligands")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "CPU threads (0: all)")->capture_default_str();
  add_placement_options(*cmd, args->placement);
  cmd->add_flag("--no-checks", args->no_checks, "Skip the PoseBusters checks");
  auto* score_only = cmd->add_flag("--score-only", args->score_only, "Score and check the input pose(s), no search");
  cmd->add_flag("--local-only", args->local_only, "Only optimise the input pose(s) locally (L-BFGS)")->excludes(score_only);
  cmd->add_flag("-q,--quiet", args->quiet, "Only the final line");
  cmd->final_callback([args, lig, smi, box, autobox] {
    if (lig->count() + smi->count() == 0) throw Error("dit dock: give --ligand or --smiles");
    if (box->count() + autobox->count() == 0) throw Error("dit dock: give --box or --autobox-ligand");
    run_dock(*args);
  });
}

}  // namespace dit::cli
