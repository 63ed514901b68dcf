// dit-bench crystal: the crystal structure model (dit::TokenDiT with space-group labels and
// periodic state features, docs/crystal.md) at the size of the speed row: 20 cells of
// 20 atoms.
//
//   dit-bench crystal [--model file.safetensors] [--composition Ba4Ti4O12] [--atoms N]
//                     [--spacegroup 0] [--cells 20] [--steps 50] [--sampler euler] [--chunk 64]
//                     [-t/--threads N] [--no-pytorch]
//                     [--warmup 2] [--iters N | --min-time 2.0]      (the forward)
//                     [--sample-warmup 1] [--sample-repeats 3]       (the full sampling)
//                     [--json out.json]
//
// (a) forward: the network alone on one batch (the inputs CrystalDomain::encode makes for the
//     cells: element features, atom-count condition, space-group label; CrystalDomain::noise;
//     t ~ U(0, 1)) through the inference path the sampler uses (FlowNetImpl::inference() under
//     NoGradGuard), against a PyTorch-eager TokenDiT (apps/bench/pytorch_token_forward.py: label
//     embedding, sin/cos features of the periodic state) in its own process on the same weights,
//     inputs and thread count; its output is compared with the engine's on that batch and on a
//     batch of 8 cells of different compositions, atom counts (padding, key masks) and space
//     groups before anything is timed.
// (b) sampling: what dit::generate does for the cells (as `dit crystal sample`), phase by phase:
//     encode + noise, sample_flow (the network, `--steps` steps of `--sampler`, the domain's
//     projection onto the torus after every step, `--chunk` cells per model batch), decode
//     (tokens -> cells), and CrystalDomain::check of every cell (periodic distances, volume,
//     charge neutrality, spglib symmetry).
// Memory: per-phase peak resident set, as dit-bench protein (bench_common.h). The shared parts
// (options, header, the PyTorch comparison, the phase table, the JSON record) are token_bench.h.
#include <CLI/CLI.hpp>
#include <dit/error.h>
#include <dit/model.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <dit/fs.h>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "token_bench.h"

#ifdef DIT_HAVE_CRYSTAL
#include <dit/crystal.h>
#include <dit/domain.h>
#include <dit/sampler.h>
#endif

namespace dit::bench {

namespace {

using json = nlohmann::json;

// model empty: dit::crystal::default_crystal_model_path()
struct CrystalBenchOptions : TokenBenchOptions {
  std::string composition = "Ba4Ti4O12";  // the cell's contents: 20 atoms
  int atoms = 0;                          // > 0: multiply a reduced formula up to this many
  int spacegroup = 0;                     // 0: any (the null label)
  int64_t cells = 20;
  int64_t chunk = 64;  // cells per model batch while sampling (dit crystal sample's default)
};

void validate_crystal_options(const CrystalBenchOptions& o) {
  if (o.cells <= 0) throw Error(fmt::format("--cells must be positive, got {}", o.cells));
  if (o.chunk <= 0) throw Error(fmt::format("--chunk must be positive, got {}", o.chunk));
  if (o.atoms < 0) throw Error(fmt::format("--atoms must be >= 0, got {}", o.atoms));
  if (o.spacegroup < 0 || o.spacegroup > 230)
    throw Error(fmt::format("--spacegroup must be in 0..230 (0: any), got {}", o.spacegroup));
  validate_token_bench(o);
}

#ifdef DIT_HAVE_CRYSTAL

using crystal::Crystal;
using crystal::CrystalRequest;

int64_t atom_count(const crystal::Composition& c) {
  int64_t n = 0;
  for (const auto& [z, count] : c) n += count;
  return n;
}

// --composition (and --atoms) as a request; errors name the option.
CrystalRequest parse_request(const CrystalBenchOptions& o) {
  CrystalRequest r;
  try {
    r.composition = crystal::parse_composition(o.composition, o.atoms);
  } catch (const Error& e) {
    throw Error(fmt::format("--composition: {}", e.what()));
  }
  const int64_t n = atom_count(r.composition);
  if (n < 1 || n > crystal::kMaxAtoms)
    throw Error(fmt::format("--composition '{}': {} atoms in the cell, outside 1..{}", o.composition,
                            n, crystal::kMaxAtoms));
  r.spacegroup = o.spacegroup;
  return r;
}

// The inputs of the cells, as generate() makes them: encode, the domain's noise; t from a
// generator seeded by the seed.
ForwardBatch make_crystal_batch(const crystal::CrystalDomain& domain,
                        const std::vector<CrystalRequest>& requests, uint64_t seed) {
  ForwardBatch b;
  b.inputs = domain.encode(requests);
  b.x = domain.noise(b.inputs, seed, 0);
  const auto n = static_cast<int64_t>(requests.size());
  auto gen = sample_generator(seed ^ 0x5EEDull, static_cast<uint64_t>(n));
  b.t = torch::rand({n}, gen, torch::kFloat32);
  return b;
}

// The parity batch: the requested cell and 7 others of 1 to 20 atoms (padded to the longest),
// with and without space-group labels.
std::vector<CrystalRequest> mixed_requests(const CrystalRequest& requested) {
  const std::vector<std::pair<const char*, int>> cells = {
      {"NaCl", 225},   {"Si3O6", 152},    {"Cu4", 225},     {"Li4Mn2O6", 12},
      {"Fe6O8", 227}, {"Sr2Ti2O6", 221}, {"Ca4Ti4O12", 62}};
  std::vector<CrystalRequest> out = {requested};
  for (const auto& [text, sg] : cells) out.push_back({crystal::parse_composition(text), sg});
  return out;
}

struct CrystalPhaseTimes {
  std::vector<double> encode, sample, decode, checks, total;
  Memory m_encode, m_sample, m_decode, m_checks;
  int64_t valid = 0, finite = 0;  // of the last repeat
};

// One run of the pipeline of dit::generate, phase by phase (the same calls, in its order).
void sample_crystals_once(FlowNetImpl& net, const crystal::CrystalDomain& domain,
                 const std::vector<CrystalRequest>& requests, const FlowSampling& sampling,
                 CrystalPhaseTimes* out) {
  FlowInputs inputs;
  torch::Tensor x1, x0, finite;
  Progress silent;
  CrystalPhaseTimes scratch;
  CrystalPhaseTimes& p = out ? *out : scratch;
  const double t_encode = measured(
      [&] {
        inputs = domain.encode(requests);
        inputs.rows = torch::arange(static_cast<int64_t>(requests.size()), torch::kLong);
        x1 = domain.noise(inputs, sampling.seed, 0);
      },
      p.m_encode);
  auto hooks = domain.hooks();
  hooks.guide = [&](VelocityFn v, const FlowInputs& in) {
    return domain.guide_requests(std::move(v), in, requests);
  };
  const double t_sample = measured(
      [&] {
        x0 = sample_flow(net, inputs, x1, sampling, silent, hooks, nullptr, 0, &finite);
        x0 = torch::nan_to_num(x0, 0, 0, 0);
      },
      p.m_sample);
  std::vector<Crystal> cells;
  const double t_decode = measured([&] { cells = domain.decode(x0, inputs, requests); }, p.m_decode);
  int64_t valid = 0, n_finite = 0;
  const double t_checks = measured(
      [&] {
        for (size_t i = 0; i < cells.size(); ++i) {
          if (!finite[static_cast<int64_t>(i)].item<bool>()) continue;
          ++n_finite;
          valid += domain.check(cells[i]).valid();
        }
      },
      p.m_checks);
  p.encode.push_back(t_encode);
  p.sample.push_back(t_sample);
  p.decode.push_back(t_decode);
  p.checks.push_back(t_checks);
  p.total.push_back(t_encode + t_sample + t_decode + t_checks);
  p.valid = valid;
  p.finite = n_finite;
}

void run_crystal(const CrystalBenchOptions& o) {
  validate_crystal_options(o);
  const CrystalRequest request = parse_request(o);
  const int64_t atoms = atom_count(request.composition);
  const std::string name = crystal::formula(request.composition);
  {
    auto sampler = make_sampler(o.sampler);  // unknown names fail here, listing the known ones
    if (sampler->uses_flow_map())
      throw Error(fmt::format("--sampler {}: crystal models are not few-step models", o.sampler));
  }
  const std::string path = o.model.empty() ? crystal::default_crystal_model_path() : o.model;
  if (o.model.empty() && !dit::fs::exists(path))
    throw Error(fmt::format("no bundled crystal model at {}: give one with --model", path));
  auto model = crystal::load_crystal_model(path);
  auto& net = *model.net;
  net.eval();
  const BenchStart start =
      start_token_bench("crystal", o, net, path, "; decode and checks on this thread");
  const crystal::CrystalDomain domain(model.scaling);
  const std::string sg = o.spacegroup > 0 ? fmt::format("space group {}", o.spacegroup)
                                          : std::string("any space group");

  // ---- (a) forward --------------------------------------------------------------------------
  const std::vector<CrystalRequest> requests(static_cast<size_t>(o.cells), request);
  const ForwardBatch timed = make_crystal_batch(domain, requests, o.seed);
  const auto mixed_cells = mixed_requests(request);
  const ForwardBatch mixed = make_crystal_batch(domain, mixed_cells, o.seed + 1);
  const int64_t tokens = timed.x.size(1);
  const ForwardComparison fwd = compare_forward(
      "crystal", o, net, start, timed, mixed,
      {"cells x atoms", fmt::format("{} x {}", o.cells, atoms),
       fmt::format("batch {} cells of {} ({}), {} tokens each ({} atoms + {} lattice)", o.cells,
                   name, sg, tokens, atoms, tokens - atoms),
       o.cells});

  // ---- (b) sampling -------------------------------------------------------------------------
  FlowSampling sampling;
  sampling.sampler = o.sampler;
  sampling.seed = o.seed;
  sampling.chunk = o.chunk;
  sampling.options.steps = o.steps;
  const int64_t chunks = (o.cells + o.chunk - 1) / o.chunk;
  fmt::print("\nsampling:  {} cells of {} ({} atoms, {}): {} {} steps, {} cells per model batch "
             "({} batches); warmup {}, then {} timed repeats; median [min..max]\n",
             o.cells, name, atoms, sg, o.sampler, o.steps, o.chunk, chunks,
             o.sample_protocol.warmup, o.sample_protocol.iters);
  std::fflush(stdout);
  for (int i = 0; i < o.sample_protocol.warmup; ++i)
    sample_crystals_once(net, domain, requests, sampling, nullptr);
  CrystalPhaseTimes p;
  for (int i = 0; i < o.sample_protocol.iters; ++i) {
    sample_crystals_once(net, domain, requests, sampling, &p);
    fmt::print(stderr, "sampling repeat {}: {:.0f} ms\n", i + 1, p.total.back());
  }
  const std::vector<PhaseRow> rows = {
      {"encode+noise", &p.encode, &p.m_encode, "CrystalDomain::encode, noise (uniform on the torus)"},
      {"sampling", &p.sample, &p.m_sample, "sample_flow: the network, the sampler, the torus projection"},
      {"decode", &p.decode, &p.m_decode, "CrystalDomain::decode: tokens -> cell, fractional coordinates"},
      {"checks", &p.checks, &p.m_checks, "CrystalDomain::check on every cell (distances, volume, charge, spglib)"},
      {"total", &p.total, nullptr, "encode + sampling + decode + checks (= generate)"},
  };
  const json phases = print_phases(rows, p.total, o.cells, "cells_per_s");
  const double total_median = summarize(p.total).median_ms;
  const double per_eval = summarize(p.sample).median_ms / (static_cast<double>(o.steps) * chunks);
  fmt::print("sampling: {:.1f} cells/s end to end; {:.2f} ms per model batch evaluation "
             "({} steps x {} batches); checks passed by {} of {} ({} finite) in the last repeat\n",
             o.cells * 1e3 / total_median, per_eval, o.steps, chunks, p.valid, o.cells, p.finite);
  json mixed_json = json::array();
  for (const auto& r : mixed_cells)
    mixed_json.push_back({{"composition", crystal::formula(r.composition)},
                          {"atoms", atom_count(r.composition)}, {"spacegroup", r.spacegroup}});
  finish_token_bench(
      "crystal", o, net, start, fwd,
      {{"batch", o.cells}, {"composition", name}, {"atoms", atoms}, {"tokens", tokens},
       {"spacegroup", o.spacegroup}, {"mixed", mixed_json}},
      {{"cells", o.cells}, {"composition", name}, {"atoms", atoms}, {"spacegroup", o.spacegroup},
       {"sampler", o.sampler}, {"steps", o.steps}, {"chunk", o.chunk},
       {"warmup", o.sample_protocol.warmup}, {"repeats", o.sample_protocol.iters},
       {"phases", phases}, {"valid", p.valid}, {"finite", p.finite}});
}

#endif  // DIT_HAVE_CRYSTAL

}  // namespace

void add_crystal(CLI::App& app) {
  auto o = std::make_shared<CrystalBenchOptions>();
  auto* cmd = app.add_subcommand(
      "crystal", "Crystals: the TokenDiT forward (engine vs PyTorch eager on the same weights and "
                 "inputs) and the full sampling of N cells phase by phase, with peak memory");
  cmd->add_option("--model", o->model, "Crystal model file (default: the bundled model)");
  cmd->add_option("--composition", o->composition, "Cell contents (element symbols and counts)")
      ->capture_default_str();
  cmd->add_option("--atoms", o->atoms, "Multiply a reduced --composition up to this many atoms");
  cmd->add_option("--spacegroup", o->spacegroup, "Space-group condition (1..230); 0: any")
      ->capture_default_str();
  cmd->add_option("--cells", o->cells, "Cells: the forward's batch and the cells sampled")
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "Sampler steps")->capture_default_str();
  cmd->add_option("--sampler", o->sampler, "Sampler by name")->capture_default_str();
  cmd->add_option("--chunk", o->chunk, "Cells per model batch while sampling (as dit crystal sample)")
      ->capture_default_str();
  add_token_bench_options(cmd, *o);
  cmd->callback([o] {
#ifdef DIT_HAVE_CRYSTAL
    run_crystal(*o);
#else
    validate_crystal_options(*o);
    throw Error("dit-bench crystal: this build has no crystal component (libdit_crystal: needs "
                "gemmi, spglib and HDF5; see the CMake configure messages)");
#endif
  });
}

}  // namespace dit::bench
