// dit-bench protein: the protein backbone model (dit::TokenDiT, docs/protein.md) at the size of
// issue 17's speed row: 100 backbones of length 100.
//
//   dit-bench protein [--model file.safetensors] [--batch 100] [--length 100] [--steps 50]
//                     [--sampler euler] [--chunk 32] [-t/--threads N] [--no-relax] [--no-pytorch]
//                     [--cli-defaults]
//                     [--warmup 2] [--iters N | --min-time 2.0]      (the forward)
//                     [--sample-warmup 1] [--sample-repeats 3]       (the full sampling)
//                     [--json out.json]
//
// (a) forward: the network alone on one batch of B x L tokens (the inputs ProteinDomain::encode
//     makes for B chains of length L, token noise, t ~ U(0, 1)) through the inference path the
//     sampler uses (FlowNetImpl::inference() under NoGradGuard), against a PyTorch-eager
//     TokenDiT (apps/bench/pytorch_token_forward.py) in its own process on the same weights,
//     inputs and thread count; its output is compared with the engine's on that batch and on a
//     batch of mixed lengths (padding, key masks) before anything is timed.
// (b) sampling: what dit::generate does for B requests of length L, phase by phase: encode +
//     noise, sample_flow (the network, `--steps` steps of `--sampler`, `--chunk` chains per
//     model batch as `dit protein sample`), decode without relaxation (C-alpha trace -> backbone
//     rebuild), decode with relaxation (rebuild + OpenMM minimisation; relax = the difference,
//     per repeat), and the checks of every backbone. By default the model alone (the library's
//     and batch jobs' default); with --cli-defaults the pipeline of `dit protein sample`'s
//     defaults (protein::SampleDefaults: its sampler, steps and noise scale, trace guidance with
//     secondary-structure strings from the library and the compactness term, the Ramachandran
//     restraint and the outlier polish in the relaxation).
// Memory: the resident set of this process (/proc/self/status): VmHWM is reset before each
// phase (writing 5 to /proc/self/clear_refs) and read after it, so each phase reports its own
// peak; where the reset is refused the peak is cumulative, and the output says so.
// What dit-bench crystal shares with this (options, header, the PyTorch comparison, the phase
// table, the JSON record) is in token_bench.h.
#include <CLI/CLI.hpp>
#include <dit/error.h>
#include <dit/model.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "token_bench.h"

#ifdef DIT_HAVE_PROTEIN
#include <dit/domain.h>
#include <dit/protein.h>
#endif

namespace dit::bench {

namespace {

using json = nlohmann::json;

// model empty: dit::protein::default_protein_model_path()
struct ProteinBenchOptions : TokenBenchOptions {
  int64_t batch = 100, length = 100;
  int64_t chunk = 32;  // chains per model batch while sampling (dit protein sample's default)
  bool no_relax = false;
  bool cli_defaults = false;  // the pipeline of dit protein sample's defaults (protein::SampleDefaults)
};

void validate_protein_options(const ProteinBenchOptions& o) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw Error(fmt::format("{} must be positive, got {}", name, v));
  };
  positive(o.batch, "--batch");
  positive(o.length, "--length");
  positive(o.chunk, "--chunk");
  validate_token_bench(o);
}

#ifdef DIT_HAVE_PROTEIN

using protein::Backbone;
using protein::ProteinRequest;

// The inputs of `lengths.size()` chains, as generate() makes them: encode, token noise; t from
// a generator seeded by the seed.
ForwardBatch make_protein_batch(const protein::ProteinDomain& domain, const std::vector<int64_t>& lengths,
                        uint64_t seed) {
  std::vector<ProteinRequest> requests;
  for (auto L : lengths) requests.push_back({L});
  ForwardBatch b;
  b.inputs = domain.encode(requests);
  b.x = domain.noise(b.inputs, seed, 0);
  auto gen = sample_generator(seed ^ 0x5EEDull, static_cast<uint64_t>(lengths.size()));
  b.t = torch::rand({static_cast<int64_t>(lengths.size())}, gen, torch::kFloat32);
  return b;
}

struct ProteinPhaseTimes {
  std::vector<double> encode, sample, rebuild, decode_relaxed, relax, checks, total;
  Memory m_encode, m_sample, m_rebuild, m_decode_relaxed, m_checks;
  int64_t valid = 0, finite = 0;  // of the last repeat
};

// One run of the pipeline of dit::generate, phase by phase (the same calls, in its order).
void sample_proteins_once(const ProteinBenchOptions& o, FlowNetImpl& net,
                 const protein::ProteinDomain& rebuild_only, const protein::ProteinDomain& relaxing,
                 const std::vector<ProteinRequest>& requests, const FlowSampling& sampling,
                 ProteinPhaseTimes* out) {
  FlowInputs inputs;
  torch::Tensor x1, x0, finite;
  Progress silent;
  ProteinPhaseTimes scratch;
  ProteinPhaseTimes& p = out ? *out : scratch;
  const double t_encode = measured(
      [&] {
        inputs = rebuild_only.encode(requests);
        inputs.rows = torch::arange(static_cast<int64_t>(requests.size()), torch::kLong);
        x1 = rebuild_only.noise(inputs, sampling.seed, 0);
      },
      p.m_encode);
  auto hooks = rebuild_only.hooks();
  hooks.guide = [&](VelocityFn v, const FlowInputs& in) {  // as dit::generate
    return rebuild_only.guide_requests(std::move(v), in, requests);
  };
  const double t_sample = measured(
      [&] {
        x0 = sample_flow(net, inputs, x1, sampling, silent, hooks, nullptr, 0, &finite);
        x0 = torch::nan_to_num(x0, 0, 0, 0);
      },
      p.m_sample);
  std::vector<Backbone> rebuilt, relaxed;
  const double t_rebuild =
      measured([&] { rebuilt = rebuild_only.decode(x0, inputs, requests); }, p.m_rebuild);
  double t_decode_relaxed = 0;
  if (!o.no_relax)
    t_decode_relaxed =
        measured([&] { relaxed = relaxing.decode(x0, inputs, requests); }, p.m_decode_relaxed);
  const std::vector<Backbone>& checked = !o.no_relax ? relaxed : rebuilt;
  int64_t valid = 0, n_finite = 0;
  const double t_checks = measured(
      [&] {
        for (size_t i = 0; i < checked.size(); ++i) {
          if (!finite[static_cast<int64_t>(i)].item<bool>()) continue;
          ++n_finite;
          valid += relaxing.check(checked[i]).valid();
        }
      },
      p.m_checks);
  p.encode.push_back(t_encode);
  p.sample.push_back(t_sample);
  p.rebuild.push_back(t_rebuild);
  p.decode_relaxed.push_back(t_decode_relaxed);
  p.relax.push_back(!o.no_relax ? t_decode_relaxed - t_rebuild : 0.0);
  p.checks.push_back(t_checks);
  p.total.push_back(t_encode + t_sample + (!o.no_relax ? t_decode_relaxed : t_rebuild) + t_checks);
  p.valid = valid;
  p.finite = n_finite;
}

void run_protein(const ProteinBenchOptions& o) {
  validate_protein_options(o);
  const std::string path = o.model.empty() ? protein::default_protein_model_path() : o.model;
  auto net = protein::load_protein_model(path);
  net->eval();
  const BenchStart start =
      start_token_bench("protein", o, *net, path, "; OpenMM relaxation: 1 thread per backbone");

  protein::DecodeOptions no_relax, relax;
  no_relax.relax = false;
  protein::TraceGuidance guidance;
  FlowSampling sampling;
  sampling.sampler = o.sampler;
  sampling.seed = o.seed;
  sampling.chunk = o.chunk;
  sampling.options.steps = o.steps;
  if (o.cli_defaults) {
    using D = protein::SampleDefaults;
    relax.rama_restraint = D::kRamaRestraint;  // and DecodeOptions' polish rounds
    guidance.weight = D::kTraceGuidance, guidance.t_max = D::kTraceGuidanceTMax;
    sampling.sampler = D::kSampler;
    sampling.options.steps = D::kSteps;
    sampling.options.noise_scale = D::kNoiseScale;
  }
  // Secondary-structure models read no string here unless --cli-defaults gives the library's
  // (the same network cost either way).
  const bool ss = protein::takes_secondary_structure(*net);
  const protein::ProteinDomain rebuild_only(no_relax, guidance, ss), relaxing(relax, guidance, ss);

  // ---- (a) forward --------------------------------------------------------------------------
  const ForwardBatch timed = make_protein_batch(rebuild_only, std::vector<int64_t>(static_cast<size_t>(o.batch), o.length), o.seed);
  std::vector<int64_t> mixed_lengths;  // padding and key masks: 8 chains, lengths 40 .. length
  for (int64_t i = 0; i < 8; ++i)
    mixed_lengths.push_back(std::max<int64_t>(protein::kMinLength,
                                              std::min(o.length, 40 + (o.length - 40) * i / 7)));
  const ForwardBatch mixed = make_protein_batch(rebuild_only, mixed_lengths, o.seed + 1);
  const ForwardComparison fwd = compare_forward(
      "protein", o, *net, start, timed, mixed,
      {"B x L", fmt::format("{} x {}", o.batch, o.length),
       fmt::format("batch {} x length {} tokens", o.batch, o.length), o.batch});

  // ---- (b) sampling -------------------------------------------------------------------------
  // Sample k's string (with --cli-defaults) is the one `dit protein sample --seed S` gives it.
  std::vector<ProteinRequest> requests(static_cast<size_t>(o.batch), ProteinRequest{o.length});
  if (o.cli_defaults) {
    const protein::SecondaryStructureLibrary library;
    for (size_t k = 0; k < requests.size(); ++k)
      requests[k].secondary_structure = library.sample(o.length, mix_seed(mix_seed(o.seed, k), 1));
  }
  const int64_t steps = sampling.options.steps;
  const int64_t chunks = (o.batch + o.chunk - 1) / o.chunk;
  const std::string pipeline =
      o.cli_defaults ? fmt::format("dit protein sample's defaults: noise scale {}, trace guidance {} for t <= {} "
                                   "with library strings and compactness {}, Ramachandran restraint {}, "
                                   "{} polish rounds",
                                   sampling.options.noise_scale, guidance.weight, guidance.t_max,
                                   guidance.compactness, relax.rama_restraint, relax.polish_rounds)
                     : std::string("the model alone (no guidance, no restraint)");
  fmt::print("\nsampling:  {} backbones of length {}: {} {} steps, {} chains per model batch ({} "
             "batches); relax {}; {}; warmup {}, then {} timed repeats; median [min..max]\n",
             o.batch, o.length, sampling.sampler, steps, o.chunk, chunks, !o.no_relax ? "on" : "off", pipeline,
             o.sample_protocol.warmup, o.sample_protocol.iters);
  std::fflush(stdout);
  for (int i = 0; i < o.sample_protocol.warmup; ++i)
    sample_proteins_once(o, *net, rebuild_only, relaxing, requests, sampling, nullptr);
  ProteinPhaseTimes p;
  for (int i = 0; i < o.sample_protocol.iters; ++i) {
    sample_proteins_once(o, *net, rebuild_only, relaxing, requests, sampling, &p);
    fmt::print(stderr, "sampling repeat {}: {:.0f} ms\n", i + 1, p.total.back());
  }
  std::vector<PhaseRow> rows = {
      {"encode+noise", &p.encode, &p.m_encode, "ProteinDomain::encode, token_noise"},
      {"sampling", &p.sample, &p.m_sample, "sample_flow: the network and the sampler"},
      {"rebuild", &p.rebuild, &p.m_rebuild, "decode, relax off: C-alpha trace -> N CA C O CB"},
  };
  if (!o.no_relax) {
    rows.push_back({"rebuild+relax", &p.decode_relaxed, &p.m_decode_relaxed,
                    "decode, relax on (OpenMM restrained minimisation)"});
    rows.push_back({"relax", &p.relax, nullptr, "rebuild+relax - rebuild, per repeat"});
  }
  rows.push_back({"checks", &p.checks, &p.m_checks, "check_backbone on every backbone"});
  rows.push_back({"total", &p.total, nullptr,
                  !o.no_relax ? "encode + sampling + rebuild+relax + checks (= generate)"
                          : "encode + sampling + rebuild + checks (= generate)"});
  const json phases = print_phases(rows, p.total, o.batch, "backbones_per_s");
  const double total_median = summarize(p.total).median_ms;
  const double per_eval = summarize(p.sample).median_ms / (static_cast<double>(steps) * chunks);
  fmt::print("sampling: {:.1f} backbones/s end to end; {:.2f} ms per model batch evaluation "
             "({} steps x {} batches); checks passed by {} of {} ({} finite) in the last repeat\n",
             o.batch * 1e3 / total_median, per_eval, steps, chunks, p.valid, o.batch, p.finite);
  finish_token_bench(
      "protein", o, *net, start, fwd, {{"batch", o.batch}, {"length", o.length}},
      {{"backbones", o.batch}, {"length", o.length}, {"sampler", sampling.sampler},
       {"steps", steps}, {"chunk", o.chunk}, {"relax", !o.no_relax}, {"pipeline", pipeline},
       {"warmup", o.sample_protocol.warmup}, {"repeats", o.sample_protocol.iters},
       {"phases", phases}, {"valid", p.valid}, {"finite", p.finite}});
}

#endif  // DIT_HAVE_PROTEIN

}  // namespace

void add_protein(CLI::App& app) {
  auto o = std::make_shared<ProteinBenchOptions>();
  auto* cmd = app.add_subcommand(
      "protein", "Protein backbones: the TokenDiT forward (engine vs PyTorch eager on the same "
                 "weights and inputs) and the full sampling of B backbones phase by phase, with "
                 "peak memory");
  cmd->add_option("--model", o->model, "Protein model file (default: the bundled model)");
  cmd->add_option("--batch", o->batch, "Chains: the forward's batch and the backbones sampled")
      ->capture_default_str();
  cmd->add_option("--length", o->length, "Residues per chain")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Sampler steps")->capture_default_str();
  cmd->add_option("--sampler", o->sampler, "Sampler by name")->capture_default_str();
  cmd->add_option("--chunk", o->chunk, "Chains per model batch while sampling (as dit protein sample)")
      ->capture_default_str();
  cmd->add_flag("--no-relax", o->no_relax, "Skip the OpenMM relaxation (decode rebuilds only)");
  cmd->add_flag("--cli-defaults", o->cli_defaults,
                "Time the pipeline of `dit protein sample`'s defaults (its sampler, steps and noise scale, trace "
                "guidance with library strings, Ramachandran restraint, outlier polish; overrides --sampler and "
                "--steps) instead of the model alone");
  add_token_bench_options(cmd, *o);
  cmd->callback([o] {
#ifdef DIT_HAVE_PROTEIN
    run_protein(*o);
#else
    validate_protein_options(*o);
    throw Error("dit-bench protein: this build has no protein component (libdit_protein: needs "
                "OpenMM, gemmi and HDF5; see the CMake configure messages)");
#endif
  });
}

}  // namespace dit::bench
