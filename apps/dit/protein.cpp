// dit protein sample | train: protein backbones (libdit_protein, docs/protein.md).
#include <dit/error.h>
#include <dit/protein.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <dit/fs.h>
#include <map>

#include "check.h"
#include "commands.h"

namespace dit::cli {
namespace {

namespace fs = dit::fs;

// The defaults of `dit protein sample` (docs/protein.md): low-temperature SDE sampling with the
// trace guidance, its secondary-structure restraints on a string from the library, and the
// Ramachandran restraint, the settings that pass most often with the bundled model (15 of 24
// backbones at seed 11; 10 without the strings; 0 for the model alone). The library's defaults
// (TraceGuidance, DecodeOptions, ProteinRequest) stay at the model alone.
struct ProteinSampleArgs {
  std::string model, out = "backbones", h5, sampler = protein::SampleDefaults::kSampler, grid = "uniform";
  std::string ss = "auto", ss_library;
  Placement placement;  // --device, --dtype
  std::vector<int64_t> lengths = {100};
  int64_t count = 10, steps = protein::SampleDefaults::kSteps, chunk = 32;
  double shift = 3.0, diffusion = 1.0, noise_scale = protein::SampleDefaults::kNoiseScale;
  double rama = protein::SampleDefaults::kRamaRestraint;
  int polish_rounds = protein::DecodeOptions{}.polish_rounds;
  double guidance = protein::SampleDefaults::kTraceGuidance;
  double guidance_t_max = protein::SampleDefaults::kTraceGuidanceTMax, ss_restraint = protein::TraceGuidance{}.secondary_structure;
  double compactness = protein::TraceGuidance{}.compactness;
  uint64_t seed = 42;
  int threads = 0;
  bool no_relax = false, quiet = false;
};

void run_protein_sample(const ProteinSampleArgs& a) {
  set_threads(a.threads);
  const std::string model_path = a.model.empty() ? protein::default_protein_model_path() : a.model;
  auto model = protein::load_protein_model(model_path);
  place_for_sampling(*model, a.placement);
  auto sampler = make_sampler(a.sampler);  // unknown names fail here, listing the known ones
  if (sampler->uses_flow_map() && !model->step_conditioned())
    throw Error(fmt::format("--sampler {}: needs a few-step (step-conditioned) model; {} is not one",
                            a.sampler, model_path));
  protein::DecodeOptions decode;
  decode.relax = !a.no_relax;
  decode.rama_restraint = a.rama;
  decode.polish_rounds = a.polish_rounds;
  protein::TraceGuidance guidance;
  guidance.weight = a.guidance, guidance.t_max = a.guidance_t_max, guidance.secondary_structure = a.ss_restraint;
  guidance.compactness = a.compactness;
  const bool takes_ss = protein::takes_secondary_structure(*model);
  protein::ProteinDomain domain(decode, guidance, takes_ss);
  // --ss: auto (the library when the model takes secondary structure or the guidance's restraints
  // act on it), none, library, or a string.
  const bool restrained = a.guidance > 0 && a.ss_restraint > 0;
  const std::string ss_source = a.ss == "auto" ? (takes_ss || restrained ? "library" : "none") : a.ss;
  // A model without secondary-structure inputs gets the string through the trace guidance alone.
  if (ss_source != "none" && !takes_ss && !restrained)
    throw Error(fmt::format("--ss {}: {} does not take secondary structure as input, and without "
                            "--trace-guidance and --ss-restraint above 0 the string would do nothing", a.ss,
                            model_path));
  if (ss_source != "none" && ss_source != "library")
    for (auto L : a.lengths)
      if (static_cast<int64_t>(ss_source.size()) != L)
        throw Error(fmt::format("--ss: the string has {} residues, --length asks for {}", ss_source.size(), L));
  if (ss_source != "none" && ss_source != "library")  // its letters, before sampling starts
    domain.encode({{a.lengths.front(), ss_source}});
  std::unique_ptr<protein::SecondaryStructureLibrary> library;
  if (ss_source == "library") library = std::make_unique<protein::SecondaryStructureLibrary>(a.ss_library);
  // Sample k: length lengths[k / count], noise seeded by (seed, k); its secondary structure from
  // the library by a seed of its own, mix_seed(mix_seed(seed, k), 1).
  std::vector<protein::ProteinRequest> requests;
  for (auto L : a.lengths)
    for (int64_t i = 0; i < a.count; ++i) {
      const auto k = static_cast<uint64_t>(requests.size());
      requests.push_back({L, ss_source == "none"      ? std::string()
                             : library                 ? library->sample(L, mix_seed(mix_seed(a.seed, k), 1))
                                                       : ss_source});
    }
  FlowSampling sampling;
  sampling.sampler = a.sampler, sampling.seed = a.seed, sampling.chunk = a.chunk;
  auto& opts = sampling.options;
  opts.steps = a.steps, opts.grid.name = a.grid, opts.grid.shift = a.shift, opts.diffusion = a.diffusion;
  opts.noise_scale = a.noise_scale;
  fs::create_directories(a.out);

  const auto total = static_cast<int64_t>(requests.size());
  const int64_t chunks = static_cast<int64_t>(a.lengths.size()) * ((a.count + a.chunk - 1) / a.chunk);
  Progress progress(fmt::format("protein sample {} x{}", a.sampler, total),
                    sampler->adaptive() ? 0 : a.steps * sampler->nfe_per_step() * chunks, !a.quiet);
  // One length at a time (no padding to the longest), its samples in chunks.
  std::vector<Generated<protein::Backbone>> samples;
  for (size_t li = 0; li < a.lengths.size(); ++li) {
    std::vector<protein::ProteinRequest> same(requests.begin() + li * a.count,
                                              requests.begin() + (li + 1) * a.count);
    auto out = generate(domain, *model, same, sampling, progress, static_cast<int64_t>(li) * a.count);
    for (auto& g : out) samples.push_back(std::move(g));
  }
  progress.finish();

  std::map<int64_t, std::pair<int64_t, int64_t>> per_length;  // valid, total
  std::vector<std::string> written;
  for (size_t k = 0; k < samples.size(); ++k) {
    auto& g = samples[k];
    const int64_t L = requests[k].length, i = static_cast<int64_t>(k) % a.count;
    g.structure.name = fmt::format("len{}_{}", L, i);
    const bool valid = g.finite && g.checks.valid();
    per_length[L].first += valid;
    per_length[L].second += 1;
    const std::string path = (fs::path(a.out) / (g.structure.name + ".pdb")).string();
    if (g.finite) {
      protein::write_backbone_pdb(g.structure, path);
      written.push_back(path);
    }
    if (!g.finite)
      fmt::print("{:<14} non-finite during sampling (seed {}): not written, flagged\n", g.structure.name,
                 mix_seed(a.seed, static_cast<uint64_t>(g.index)));
    else if (!valid)
      fmt::print("{:<14} FAILS {}\n", g.structure.name, failed_checks(g.checks));
  }
  if (!a.h5.empty()) {
    auto seeds = torch::empty({total}, torch::kInt64);
    for (int64_t k = 0; k < total; ++k) seeds[k] = static_cast<int64_t>(mix_seed(a.seed, static_cast<uint64_t>(k)));
    nlohmann::json parameters = {
        {"model", {{"path", model_path}, {"config", model->describe()}}},
        {"sampler", {{"name", a.sampler}, {"steps", a.steps}, {"time_grid", a.grid}, {"shift", a.shift},
                     {"diffusion", a.diffusion}, {"noise_scale", a.noise_scale}}},
        {"protein", {{"lengths", a.lengths}, {"per_length", a.count}, {"relax", !a.no_relax},
                     {"rama_restraint", a.rama}, {"polish_rounds", a.polish_rounds}, {"trace_guidance", a.guidance}, {"trace_guidance_t_max", a.guidance_t_max},
                     {"ss_restraint", a.ss_restraint}, {"compactness", a.compactness},
                     {"secondary_structure", ss_source == "library" || ss_source == "none" ? ss_source : "given"}}},
        {"seeds", {{"seed", std::to_string(a.seed)}}}};
    if (ss_source != "none") {  // the string each sample was conditioned on, in sample order
      auto strings = nlohmann::json::array();
      for (const auto& r : requests) strings.push_back(r.secondary_structure);
      parameters["protein"]["secondary_structure_strings"] = strings;
    }
    try {
      protein::write_backbones_h5(a.h5, samples, seeds, parameters);
    } catch (...) {  // a failed run leaves no output
      for (const auto& p : written) fs::remove(p);
      throw;
    }
  }
  fmt::print("{:>8} {:>8} {:>12}\n", "length", "samples", "pass checks");
  int64_t all_valid = 0;
  for (const auto& [L, vt] : per_length) {
    fmt::print("{:>8} {:>8} {:>12}\n", L, vt.second, fmt::format("{}/{}", vt.first, vt.second));
    all_valid += vt.first;
  }
  fmt::print(stderr, "wrote {} PDB files to {}{}; {}/{} pass every check (failing ones are flagged above, "
             "kept)\n", written.size(), a.out, a.h5.empty() ? "" : " and " + a.h5, all_valid, total);
}

struct RebuildArgs {
  std::string in, out, chain;
  bool no_relax = false;
  int threads = 0;
};

// A C-alpha trace (any PDB / mmCIF; only the CA atoms are read) to a full backbone by the
// decoder that sampled traces go through; the table of checks of the result.
// The exit status is 0 once the file is written, whatever the checks say (as for sampling).
void run_rebuild(const RebuildArgs& a) {
  set_threads(a.threads);
  const auto input = protein::read_backbone_pdb(a.in, a.chain);
  const auto L = static_cast<int64_t>(input.size());
  if (L < protein::kMinLength || L > protein::kMaxLength)
    throw Error(fmt::format("{}: {} residues; rebuild takes chains of {}..{}", a.in, L, protein::kMinLength,
                            protein::kMaxLength));
  protein::DecodeOptions options;
  options.relax = !a.no_relax;
  protein::ProteinDomain domain(options);
  auto rebuilt = domain.decode_trace(input.ca);
  rebuilt.name = input.name;
  rebuilt.sequence = input.sequence;
  // Residues keep their names, so that glycines lose their CB again.
  for (size_t r = 0; r < rebuilt.size() && r < input.sequence.size(); ++r)
    if (input.sequence[r] == 'G' && r < rebuilt.cb.size()) rebuilt.cb[r].fill(std::nan(""));
  protein::write_backbone_pdb(rebuilt, a.out);
  fmt::print("{}: rebuilt {} residues from the C-alpha trace{} -> {}\n", a.in, L,
             a.no_relax ? "" : " and relaxed", a.out);
  report_checks(protein::check_backbone(rebuilt), {{"file", a.out}}, "");
}

struct ProteinTrainArgs {
  protein::ProteinTrainOptions o;
  std::string out = "runs/protein";
  int threads = 0;
};

void run_protein_train(ProteinTrainArgs a) {
  set_threads(a.threads);
  fs::create_directories(a.out);
  a.o.output = (fs::path(a.out) / "model.safetensors").string();
  a.o.checkpoint = (fs::path(a.out) / "checkpoint.safetensors").string();
  protein::train_protein_model(a.o);
}

}  // namespace

void add_protein(CLI::App& app) {
  auto* protein = app.add_subcommand("protein", "Protein backbones: sample, train (docs/protein.md)");
  protein->require_subcommand(1);

  auto a = std::make_shared<ProteinSampleArgs>();
  auto* s = protein->add_subcommand("sample", "Generate backbones of given lengths; each is checked and written "
                                              "as PDB (N, CA, C, O, CB), failing ones flagged");
  s->add_option("--length", a->lengths, "Chain lengths, comma-separated (8..512)")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(protein::kMinLength, protein::kMaxLength));
  s->add_option("-n,--count", a->count, "Backbones per length")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_option("-o,--out", a->out, "Output folder of the PDB files (lenL_i.pdb)")->capture_default_str();
  s->add_option("--h5", a->h5, "Also write every backbone, its check values and seeds to this H5MD file");
  s->add_option("-m,--model", a->model, "Model file (.safetensors); default: the bundled protein model");
  s->add_option("--sampler", a->sampler, "Sampler: euler, heun, midpoint, rk4, dopri5, euler-maruyama; few-step models: flowmap, flowmap-renoise")->capture_default_str();
  s->add_option("--steps", a->steps, "Sampling steps")->capture_default_str()->check(CLI::Range(1, 10000));
  s->add_option("--schedule", a->grid, "Time grid: uniform or shifted")->capture_default_str()->check(CLI::IsMember({"uniform", "shifted"}));
  s->add_option("--shift", a->shift, "Shift of the shifted time grid")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--diffusion", a->diffusion, "euler-maruyama noise level")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--noise-scale", a->noise_scale,
                "euler-maruyama: the injected noise times this (< 1: low-temperature sampling)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("-s,--seed", a->seed, "Seed: sample k uses noise seeded by (seed, k)")->capture_default_str();
  s->add_option("--chunk", a->chunk, "Backbones per model batch")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_option("--trace-guidance", a->guidance,
                 "Weight of the trace guidance: the model's clean estimate is refined on a C-alpha trace energy "
                 "(CA-CA steps, clashes, a knowledge-based potential of virtual angles and dihedrals) and the "
                 "sampler moves towards estimate + weight (refined - estimate) (docs/protein.md); 0: the model alone")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  s->add_option("--trace-guidance-t-max", a->guidance_t_max, "The trace guidance acts for t <= this (t = 1 is noise)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  s->add_option("--rama-restraint", a->rama,
                 "Ramachandran restraint of the relaxation, in kT of a knowledge-based phi/psi energy "
                 "(docs/protein.md); 0: none")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--polish-rounds", a->polish_rounds,
                 "With --rama-restraint > 0: rounds of relaxing again with the residues the Ramachandran check "
                 "flags restrained to the nearest favoured phi/psi and the twisted peptides to planarity (0: none)")
      ->capture_default_str()->check(CLI::Range(0, 10));
  s->add_option("--ss", a->ss,
                 "Secondary structure to condition on, as the model's input (models trained with "
                 "--secondary-structure) and through the trace guidance's restraints (--ss-restraint): auto "
                 "(library when either acts, else none), none, library (a real training chain's string of about "
                 "the length, per sample), or one letter per residue: H helix, E strand, L loop, ? free")
      ->capture_default_str();
  s->add_option("--ss-restraint", a->ss_restraint,
                 "Scale of the trace guidance's pull of H and E residues to helix and strand geometry (0: none)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--compactness", a->compactness,
                 "Scale of the trace guidance's pull on chains more extended than 1.5 x the radius-of-gyration "
                 "length law 2.2 N^0.38 A (docs/protein.md; 0: none)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--ss-library", a->ss_library, "Secondary-structure library file (default: the bundled one)")
      ->check(CLI::ExistingFile);
  s->add_flag("--no-relax", a->no_relax, "Skip the restrained OpenMM relaxation of the rebuilt backbones");
  s->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_placement_options(*s, a->placement);
  s->add_flag("-q,--quiet", a->quiet, "No progress bar");
  s->callback([a] { run_protein_sample(*a); });

  auto rb = std::make_shared<RebuildArgs>();
  auto* r = protein->add_subcommand("rebuild", "Rebuild N, C, O and CB from a C-alpha trace (the decoder of "
                                               "sampled traces) and check the result");
  r->add_option("input", rb->in, "PDB / mmCIF file (only its C-alpha atoms are used)")->required()->check(CLI::ExistingFile);
  r->add_option("-o,--out", rb->out, "Output PDB file")->required();
  r->add_option("--chain", rb->chain, "The chain to read (default: the first protein chain)");
  r->add_flag("--no-relax", rb->no_relax, "Skip the restrained OpenMM relaxation");
  r->add_option("-t,--threads", rb->threads, "Threads (0: all cores)")->capture_default_str();
  r->callback([rb] { run_rebuild(*rb); });

  auto t = std::make_shared<ProteinTrainArgs>();
  t->o.train.steps = 20000, t->o.train.batch_size = 16, t->o.train.lr = 3e-4, t->o.train.warmup_steps = 500;
  t->o.train.ema_decay = 0.999, t->o.train.lr_schedule = "cosine";
  auto* tr = protein->add_subcommand("train", "Train the backbone model by flow matching on prepared chains "
                                               "(scripts/protein/prepare.py)");
  tr->add_option("--data", t->o.data, "chains.h5 from scripts/protein/prepare.py")->required()->check(CLI::ExistingFile);
  tr->add_option("-o,--out", t->out, "Output folder (model.safetensors: EMA weights; checkpoint.safetensors)")->capture_default_str();
  tr->add_option("--min-length", t->o.min_length, "Shortest training chain")->capture_default_str();
  tr->add_option("--max-length", t->o.max_length, "Longest training chain")->capture_default_str();
  tr->add_option("--hidden", t->o.hidden, "Hidden size")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--depth", t->o.depth, "Blocks")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--heads", t->o.heads, "Attention heads")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--chain-neighbours", t->o.chain_neighbours,
                 "Neighbours on either side whose displacement each residue sees (0: none)")
      ->capture_default_str()->check(CLI::Range(0, 32));
  tr->add_flag("--secondary-structure", t->o.secondary_structure,
               "Residues also see their secondary structure (the data's DSSP, 3 states), so that sampling "
               "can be conditioned on it (dit protein sample --ss)");
  tr->add_option("--ss-dropout", t->o.ss_dropout,
                 "Probability that a training chain goes without its secondary structure (unconditioned)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  tr->add_option("--init", t->o.init, "Start from this protein model's weights (new inputs start at zero)")
      ->check(CLI::ExistingFile);
  tr->add_option("--steps", t->o.train.steps, "Total optimisation steps")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("-b,--batch", t->o.train.batch_size, "Chains per batch")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--lr", t->o.train.lr, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--lr-schedule", t->o.train.lr_schedule, "constant or cosine")->capture_default_str()
      ->check(CLI::IsMember({"constant", "cosine"}));
  tr->add_option("--warmup", t->o.train.warmup_steps, "Warmup steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  tr->add_option("--ema", t->o.train.ema_decay, "EMA decay")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  tr->add_option("--t-sampling", t->o.train.t_sampling,
                 "Training times: logit-normal (sigmoid(mean + std n)) or uniform (more steps near the data, t = 0, "
                 "where the local geometry is set)")
      ->capture_default_str()->check(CLI::IsMember({"logit-normal", "uniform"}));
  tr->add_option("--logit-mean", t->o.train.logit_mean, "Mean of the logit-normal times (< 0: nearer the data)")
      ->capture_default_str();
  tr->add_option("--logit-std", t->o.train.logit_std, "Spread of the logit-normal times")
      ->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--objective", t->o.train.objective, "flow-matching, shortcut or progressive")->capture_default_str();
  tr->add_option("--seed", t->o.train.seed, "Seed (weights, data order, noise)")->capture_default_str();
  tr->add_option("--checkpoint-every", t->o.checkpoint_every, "Steps between checkpoints")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_flag("--resume", t->o.resume, "Continue from OUT/checkpoint.safetensors");
  tr->add_option("-t,--threads", t->threads, "Threads (0: all cores)")->capture_default_str();
  tr->callback([t] { run_protein_train(*t); });
}

}  // namespace dit::cli
