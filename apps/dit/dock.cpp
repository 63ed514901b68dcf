// dit dock: ligand poses in a protein pocket. One ligand (--smiles, or a one-record file) or a
// virtual screen (--ligand many.sdf, streamed): each ligand is prepared, docked, checked and
// written as it completes; a ligand that fails is logged with the reason and skipped.
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

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
  double guidance = 1.0, autobox_padding = 4.0, pocket_cutoff = 8.0, refine_weight = 0.02;
  uint64_t seed = 1234;
  bool no_checks = false, quiet = false, score_only = false, local_only = false;
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

struct SummaryRow {
  std::string name, status;
  double affinity = NAN, seconds = 0;
  int poses = 0, valid = 0;
  bool best_valid = false;
};

void run_dock(const DockArgs& a) {
  set_threads(a.threads);
  const auto receptor = docking::read_receptor(a.receptor);
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
  resolve_device(a.placement.device);  // a GPU that is not there fails now, before any work
  // A box away from the protein fails once, before any ligand (not once per ligand of a screen).
  docking::box_pocket(receptor, box, a.pocket_cutoff, a.box.empty() ? "--autobox-ligand " + a.autobox_ligand : "--box");
  docking::LigandLimits limits;
  limits.max_heavy_atoms = a.max_heavy;
  auto reader = a.smiles.empty() ? docking::LigandReader::from_file(a.ligand, a.seed, limits)
                                 : docking::LigandReader::from_smiles(a.smiles, "ligand", a.seed, limits);
  nlohmann::json params = {
      {"receptor", a.receptor}, {"ligand", a.smiles.empty() ? a.ligand : a.smiles},
      {"box", {box.center[0], box.center[1], box.center[2], box.size[0], box.size[1], box.size[2]}},
      {"model", options.model.empty() ? "none (physics only: random starting poses)" : options.model},
      {"sampler", options.sampler}, {"sample_steps", options.sample_steps},
      {"guidance", options.guidance}, {"seed", a.seed}, {"num_poses", a.num_poses},
      {"top", a.top}, {"mc_steps", a.mc_steps}, {"refine", a.refine},
      {"refine_weight", a.refine_weight}, {"version", version_string()}};
  docking::PoseWriter writer(a.output, a.h5, params.dump());
  if (!a.quiet)
    fmt::print(stderr, "dit dock: receptor {} ({} atoms), box {:.2f},{:.2f},{:.2f} size {:.1f}x{:.1f}x{:.1f}, "
               "starts: {}\n", a.receptor, receptor.atoms.size(), box.center[0], box.center[1],
               box.center[2], box.size[0], box.size[1], box.size[2],
               options.model.empty() ? "random (physics only)" : options.model);
  std::vector<SummaryRow> rows;
  docking::LigandRecord record;
  int failed = 0;
  const auto started = std::chrono::steady_clock::now();  // for ligands/min of a screen
  while (reader.next(record)) {
    SummaryRow row;
    row.name = record.name;
    if (!record.mol) {
      row.status = record.error;
      fmt::print(stderr, "dit dock: skipped: {}\n", record.error);
      ++failed;
      rows.push_back(row);
      continue;
    }
    try {
      const auto result = docking::dock(receptor, *record.mol, box, options);
      writer.write(record.index, record.name, *record.mol, result);
      row.status = "ok";
      row.seconds = result.seconds;
      row.poses = static_cast<int>(result.poses.size());
      for (const auto& p : result.poses) row.valid += p.checks.pb_valid();
      if (!result.poses.empty()) {
        row.affinity = result.poses.front().affinity;
        row.best_valid = result.poses.front().checks.pb_valid();
      }
      if (!result.refine_skipped.empty())
        fmt::print(stderr, "dit dock: {}: not refined: {}\n", record.name, result.refine_skipped);
      if (!a.quiet)
        fmt::print(stderr, "dit dock: {} ({} rotatable bonds): best {:.2f} kcal/mol, {}/{} PB-valid, {:.1f} s "
                   "(proposals {:.1f}, search {:.1f}, refinement {:.1f}, checks {:.1f})\n",
                   record.name, result.num_rotatable, row.affinity, row.valid, row.poses, row.seconds,
                   result.proposal_seconds, result.search_seconds, result.refine_seconds,
                   result.checks_seconds);
    } catch (const std::exception& e) {
      row.status = fmt::format("{}: {}", record.name, e.what());
      fmt::print(stderr, "dit dock: skipped: {}\n", row.status);
      ++failed;
    }
    rows.push_back(row);
  }
  if (rows.empty()) throw Error(fmt::format("{}: no ligands in the input", a.ligand));
  if (rows.size() == 1 && failed == 1) throw Error(rows.front().status);  // single ligand: fatal
  if (failed == static_cast<int>(rows.size())) throw Error(fmt::format("all {} ligands failed", rows.size()));
  writer.commit();

  std::string table = fmt::format("{:<24} {:>10} {:>8} {:>9} {:>8}  {}\n", "ligand", "best", "poses",
                                  "PB-valid", "time_s", "status");
  for (const auto& r : rows)
    table += fmt::format("{:<24} {:>10.2f} {:>8} {:>9} {:>8.1f}  {}\n", r.name.substr(0, 24), r.affinity,
                         r.poses, fmt::format("{}/{}", r.valid, r.poses), r.seconds,
                         r.status == "ok" ? (r.best_valid ? "ok" : "ok (best pose not PB-valid)") : "skipped");
  if (!a.quiet) fmt::print("{}", table);
  if (!a.summary.empty()) write_file_atomic(a.summary, table);
  const double minutes =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0;
  fmt::print(stderr, "dit dock: {} ligands docked, {} skipped in {:.1f} s ({:.1f} ligands/min); {} poses -> {}{}\n",
             rows.size() - failed, failed, minutes * 60.0, minutes > 0 ? rows.size() / minutes : 0.0,
             writer.poses_written(), a.output, a.h5.empty() ? "" : " and " + a.h5);
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
