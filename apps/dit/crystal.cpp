// dit crystal sample | train: crystal structure prediction (libdit_crystal, docs/crystal.md).
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <dit/fs.h>

#include "check.h"
#include "commands.h"

namespace dit::cli {
namespace {

namespace fs = dit::fs;

struct CrystalSampleArgs {
  std::string model, out = "crystals", h5, sampler = "euler", grid = "uniform";
  Placement placement;  // --device, --dtype
  std::vector<std::string> compositions;
  int atoms = 0, spacegroup = 0;
  int64_t count = 20, steps = 50, chunk = 64;
  double shift = 3.0, diffusion = 1.0, cfg_scale = 1.0, repulsion = crystal::CrystalDomain::kDefaultRepulsion,
         anneal = crystal::CrystalDomain::kDefaultAnneal;
  uint64_t seed = 42;
  int threads = 0;
  bool quiet = false, no_standardized = false;
};

void run_crystal_sample(const CrystalSampleArgs& a) {
  set_threads(a.threads);
  std::vector<crystal::CrystalRequest> requests;
  std::vector<std::string> formulas;
  for (const auto& text : a.compositions) {
    crystal::CrystalRequest r;
    r.composition = crystal::parse_composition(text, a.atoms);  // errors name the text
    r.spacegroup = a.spacegroup;
    formulas.push_back(crystal::formula(r.composition));
    for (int64_t i = 0; i < a.count; ++i) requests.push_back(r);
  }
  const std::string model_path = a.model.empty() ? crystal::default_crystal_model_path() : a.model;
  auto model = crystal::load_crystal_model(model_path);
  place_for_sampling(*model.net, a.placement);
  auto sampler = make_sampler(a.sampler);  // unknown names fail here, listing the known ones
  if (sampler->uses_flow_map()) throw Error(fmt::format("--sampler {}: crystal models are not few-step models", a.sampler));
  if (a.cfg_scale != 1.0 && a.spacegroup == 0)
    throw Error("--cfg-scale: guidance strengthens the --spacegroup condition; give --spacegroup too");
  FlowSampling sampling;
  sampling.sampler = a.sampler, sampling.seed = a.seed, sampling.chunk = a.chunk;
  sampling.guidance.scale = a.cfg_scale;
  auto& opts = sampling.options;
  opts.steps = a.steps, opts.grid.name = a.grid, opts.grid.shift = a.shift, opts.diffusion = a.diffusion;
  crystal::CrystalDomain domain(model.scaling, a.repulsion, a.anneal);
  domain.use_sampling(sampling);

  const auto total = static_cast<int64_t>(requests.size());
  const int64_t chunks = static_cast<int64_t>(a.compositions.size()) * ((a.count + a.chunk - 1) / a.chunk);
  const int64_t nfe = a.cfg_scale != 1.0 ? 2 : 1;
  Progress progress(fmt::format("crystal sample {} x{}", a.sampler, total),
                    sampler->adaptive() ? 0 : a.steps * sampler->nfe_per_step() * chunks * nfe, !a.quiet);
  // One composition at a time (no padding), sample k of composition c seeded by (seed, c * n + k).
  std::vector<Generated<crystal::Crystal>> samples;
  for (size_t ci = 0; ci < a.compositions.size(); ++ci) {
    std::vector<crystal::CrystalRequest> same(requests.begin() + ci * a.count, requests.begin() + (ci + 1) * a.count);
    auto out = generate(domain, *model.net, same, sampling, progress, static_cast<int64_t>(ci) * a.count);
    for (auto& g : out) samples.push_back(std::move(g));
  }
  progress.finish();

  fs::create_directories(a.out);
  if (!a.no_standardized) fs::create_directories(fs::path(a.out) / "standardized");
  std::vector<std::string> written;
  int64_t valid_count = 0;
  auto cleanup = [&] {
    for (const auto& p : written) fs::remove(p);
  };
  try {
    for (size_t k = 0; k < samples.size(); ++k) {
      auto& g = samples[k];
      const std::string& f = formulas[k / static_cast<size_t>(a.count)];
      g.structure.name = fmt::format("{}_{}", f, k % static_cast<size_t>(a.count));
      const bool valid = g.finite && g.checks.valid();
      valid_count += valid;
      if (!g.finite) {
        fmt::print("{:<16} non-finite during sampling (seed {}): not written, flagged\n", g.structure.name,
                   mix_seed(a.seed, static_cast<uint64_t>(g.index)));
        continue;
      }
      const auto path = (fs::path(a.out) / (g.structure.name + ".cif")).string();
      crystal::write_crystal_cif(g.structure, path);
      written.push_back(path);
      if (!a.no_standardized) {
        const auto sym = crystal::find_symmetry(g.structure, 0.1);
        if (sym.number > 0) {
          const auto std_path = (fs::path(a.out) / "standardized" / (g.structure.name + ".cif")).string();
          crystal::write_crystal_cif(sym.standardized, std_path);
          written.push_back(std_path);
        }
      }
      if (!valid) fmt::print("{:<16} FAILS {}\n", g.structure.name, failed_checks(g.checks));
    }
    if (!a.h5.empty()) {
      auto seeds = torch::empty({total}, torch::kInt64);
      for (int64_t k = 0; k < total; ++k) seeds[k] = static_cast<int64_t>(mix_seed(a.seed, static_cast<uint64_t>(k)));
      const nlohmann::json parameters = {
          {"model", {{"path", model_path}, {"config", model.net->describe()}}},
          {"sampler", {{"name", a.sampler}, {"steps", a.steps}, {"time_grid", a.grid}, {"shift", a.shift},
                       {"cfg_scale", a.cfg_scale}, {"repulsion", a.repulsion}, {"anneal", a.anneal}}},
          {"crystal", {{"compositions", formulas}, {"per_composition", a.count}, {"spacegroup", a.spacegroup}}},
          {"seeds", {{"seed", std::to_string(a.seed)}}}};
      crystal::write_crystals_h5(a.h5, samples, seeds, parameters);
    }
  } catch (...) {  // a failed run leaves no output
    cleanup();
    throw;
  }
  fmt::print(stderr, "wrote {} CIF files to {}{}; {}/{} pass every check (failing ones are flagged above, kept)\n",
             written.size(), a.out, a.h5.empty() ? "" : " and " + a.h5, valid_count, total);
}

struct CrystalTrainArgs {
  crystal::CrystalTrainOptions o;
  std::string out = "runs/crystal";
  int threads = 0;
};

void run_crystal_train(CrystalTrainArgs a) {
  set_threads(a.threads);
  fs::create_directories(a.out);
  a.o.output = (fs::path(a.out) / "model.safetensors").string();
  a.o.checkpoint = (fs::path(a.out) / "checkpoint.safetensors").string();
  crystal::train_crystal_model(a.o);
}

}  // namespace

void add_crystal(CLI::App& app) {
  auto* cmd = app.add_subcommand("crystal", "Crystal structure prediction: sample, train (docs/crystal.md)");
  cmd->require_subcommand(1);

  auto a = std::make_shared<CrystalSampleArgs>();
  auto* s = cmd->add_subcommand("sample", "Generate cells of given compositions; each is checked and written as a "
                                          "P1 CIF (<formula>_<i>.cif), failing ones flagged");
  s->add_option("--composition", a->compositions, "Cell contents, comma-separated: Fe6O8,NaCl (counts per element)")
      ->delimiter(',')->required();
  s->add_option("--atoms", a->atoms, "Multiply a reduced formula up to this many atoms per cell")->check(CLI::Range(1, 64));
  s->add_option("--spacegroup", a->spacegroup, "Condition on a space group (1..230); 0: any")->capture_default_str()
      ->check(CLI::Range(0, 230));
  s->add_option("-n,--count", a->count, "Cells per composition")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_option("-o,--out", a->out, "Output folder of the CIF files (standardized/ holds spglib's cells)")->capture_default_str();
  s->add_option("--h5", a->h5, "Also write every cell, its check values and seeds to this H5MD file");
  s->add_option("-m,--model", a->model, "Model file (.safetensors); default: the bundled crystal model");
  s->add_option("--sampler", a->sampler, "Sampler: euler, heun, midpoint, rk4, dopri5, euler-maruyama")->capture_default_str();
  s->add_option("--steps", a->steps, "Sampling steps")->capture_default_str()->check(CLI::Range(1, 10000));
  s->add_option("--schedule", a->grid, "Time grid: uniform or shifted")->capture_default_str()->check(CLI::IsMember({"uniform", "shifted"}));
  s->add_option("--shift", a->shift, "Shift of the shifted time grid")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--diffusion", a->diffusion, "euler-maruyama noise level")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--cfg-scale", a->cfg_scale, "Classifier-free guidance of the --spacegroup condition (1: none)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--repulsion", a->repulsion, "Step of the repulsion guidance that pushes atoms closer than 0.6 x "
                                            "their covalent radii apart late in the flow (0: the model alone)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--anneal", a->anneal, "Anti-annealing slope: the atoms' velocity x (1 + anneal (1 - t)), capped so "
                                      "a step never passes the clean estimate (FlowMM; 0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("-s,--seed", a->seed, "Seed: sample k uses noise seeded by (seed, k)")->capture_default_str();
  s->add_option("--chunk", a->chunk, "Cells per model batch")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_flag("--no-standardized", a->no_standardized, "Do not write spglib's standardised cells");
  s->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  add_placement_options(*s, a->placement);
  s->add_flag("-q,--quiet", a->quiet, "No progress bar");
  s->callback([a] { run_crystal_sample(*a); });

  auto t = std::make_shared<CrystalTrainArgs>();
  t->o.train.steps = 20000, t->o.train.batch_size = 32, t->o.train.lr = 5e-4, t->o.train.warmup_steps = 300;
  t->o.train.ema_decay = 0.999, t->o.train.lr_schedule = "cosine", t->o.train.label_dropout = 0.5;
  auto* tr = cmd->add_subcommand("train", "Train the crystal model by periodic flow matching on prepared crystals "
                                          "(scripts/crystal/prepare.py)");
  tr->add_option("--data", t->o.data, "crystals.h5 from scripts/crystal/prepare.py")->required()->check(CLI::ExistingFile);
  tr->add_option("-o,--out", t->out, "Output folder (model.safetensors: EMA weights; checkpoint.safetensors)")->capture_default_str();
  tr->add_option("--max-atoms", t->o.max_atoms, "Largest training cell (atoms)")->capture_default_str();
  tr->add_option("--hidden", t->o.hidden, "Hidden size")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--depth", t->o.depth, "Blocks")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--heads", t->o.heads, "Attention heads")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--pairs", t->o.periodic_pairs, "Periodic pair inputs: frequencies of the atoms' differences "
                                               "(0: absolute coordinates; docs/crystal.md)")
      ->capture_default_str()->check(CLI::Range(0, 64));
  tr->add_option("--steps", t->o.train.steps, "Total optimisation steps")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("-b,--batch", t->o.train.batch_size, "Cells per batch")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--lr", t->o.train.lr, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--warmup", t->o.train.warmup_steps, "Warmup steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  tr->add_option("--ema", t->o.train.ema_decay, "EMA decay")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  tr->add_option("--spacegroup-dropout", t->o.train.label_dropout, "Share of cells trained without their space group")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  tr->add_option("--seed", t->o.train.seed, "Seed (weights, data order, noise)")->capture_default_str();
  tr->add_option("--checkpoint-every", t->o.checkpoint_every, "Steps between checkpoints")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_flag("--resume", t->o.resume, "Continue from OUT/checkpoint.safetensors");
  tr->add_option("-t,--threads", t->threads, "Threads (0: all cores)")->capture_default_str();
  tr->callback([t] { run_crystal_train(*t); });
}

}  // namespace dit::cli
