// dit-bench protein: the protein backbone model (dit::TokenDiT, docs/protein.md) at the size of
// issue 17's speed row: 100 backbones of length 100.
//
//   dit-bench protein [--model file.safetensors] [--batch 100] [--length 100] [--steps 50]
//                     [--sampler euler] [--chunk 32] [--threads N] [--no-relax] [--no-pytorch]
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
//     per repeat), and the checks of every backbone.
// Memory: the resident set of this process (/proc/self/status): VmHWM is reset before each
// phase (writing 5 to /proc/self/clear_refs) and read after it, so each phase reports its own
// peak; where the reset is refused the peak is cumulative, and the output says so.
#include <CLI/CLI.hpp>
#include <dit/error.h>
#include <dit/model.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bench_common.h"

#ifdef DIT_HAVE_PROTEIN
#include <dit/domain.h>
#include <dit/protein.h>
#endif

#ifndef DIT_BENCH_SCRIPT_DIR
#define DIT_BENCH_SCRIPT_DIR "apps/bench"
#endif

namespace dit::bench {

namespace {

using json = nlohmann::json;

struct ProteinBenchOptions {
  std::string model;  // empty: dit::protein::default_protein_model_path()
  int64_t batch = 100, length = 100;
  int steps = 50;
  std::string sampler = "euler";
  int64_t chunk = 32;  // chains per model batch while sampling (dit protein sample's default)
  int threads = 0;
  uint64_t seed = 0;
  Protocol protocol;                 // the forward
  Protocol sample_protocol{1, 3};    // the full sampling: warmup 1, 3 timed repeats
  bool no_relax = false;
  bool no_pytorch = false;
  std::string pytorch_script = std::string(DIT_BENCH_SCRIPT_DIR) + "/pytorch_token_forward.py";
  std::string python = "/usr/bin/python3";
  double parity_tol = 1e-4;
  std::string json_out;
  bool keep_temp = false;
};

void validate(const ProteinBenchOptions& o) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw Error(fmt::format("{} must be positive, got {}", name, v));
  };
  positive(o.batch, "--batch");
  positive(o.length, "--length");
  positive(o.steps, "--steps");
  positive(o.chunk, "--chunk");
  if (o.protocol.warmup < 0 || o.sample_protocol.warmup < 0)
    throw Error("--warmup and --sample-warmup must be >= 0");
  if (o.protocol.iters < 0) throw Error("--iters must be >= 0");
  if (o.sample_protocol.iters < 1) throw Error("--sample-repeats must be >= 1");
  if (!(o.protocol.min_time >= 0)) throw Error("--min-time must be >= 0");
  if (o.protocol.min_iters < 1) throw Error("--min-iters must be >= 1");
  if (!(o.parity_tol > 0)) throw Error("--parity-tol must be positive");
}

#ifdef DIT_HAVE_PROTEIN

// ---- resident memory (/proc/self/status) ----------------------------------------------------

// A "VmRSS" / "VmHWM" line of /proc/self/status in kB (-1 when absent).
int64_t status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where refused.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

struct Memory {
  int64_t rss_before_kb = 0;  // at the start of the phase
  int64_t peak_kb = 0;        // VmHWM at its end (since the reset)
  json to_json() const {
    return {{"rss_before_mib", rss_before_kb / 1024.0}, {"peak_rss_mib", peak_kb / 1024.0},
            {"growth_mib", (peak_kb - rss_before_kb) / 1024.0}};
  }
};

// Runs fn with the peak reset before it; keeps the largest peak seen in `mem`.
template <class F>
double measured(F&& fn, Memory& mem) {
  reset_peak_rss();
  const int64_t before = status_kb("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  fn();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const int64_t peak = status_kb("VmHWM");
  if (peak > mem.peak_kb) mem = {before, peak};
  return ms;
}

std::string mib(int64_t kb) { return fmt::format("{:.0f}", kb / 1024.0); }

using protein::Backbone;
using protein::ProteinRequest;

struct ForwardBatch {
  torch::Tensor x, t;
  FlowInputs inputs;
};

// The inputs of `lengths.size()` chains, as generate() makes them: encode, token noise; t from
// a generator seeded by the seed.
ForwardBatch make_batch(const protein::ProteinDomain& domain, const std::vector<int64_t>& lengths,
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

struct PhaseTimes {
  std::vector<double> encode, sample, rebuild, decode_relaxed, relax, checks, total;
  Memory m_encode, m_sample, m_rebuild, m_decode_relaxed, m_checks;
  int64_t valid = 0, finite = 0;  // of the last repeat
};

// One run of the pipeline of dit::generate, phase by phase (the same calls, in its order).
void sample_once(const ProteinBenchOptions& o, FlowNetImpl& net,
                 const protein::ProteinDomain& rebuild_only, const protein::ProteinDomain& relaxing,
                 const std::vector<ProteinRequest>& requests, const FlowSampling& sampling,
                 PhaseTimes* out) {
  FlowInputs inputs;
  torch::Tensor x1, x0, finite;
  Progress silent;
  PhaseTimes scratch;
  PhaseTimes& p = out ? *out : scratch;
  const double t_encode = measured(
      [&] {
        inputs = rebuild_only.encode(requests);
        inputs.rows = torch::arange(static_cast<int64_t>(requests.size()), torch::kLong);
        x1 = rebuild_only.noise(inputs, sampling.seed, 0);
      },
      p.m_encode);
  auto hooks = rebuild_only.hooks();
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

// The PyTorch side: weights and inputs to a temporary directory, the script in its own process.
json run_pytorch(const ProteinBenchOptions& o, FlowNetImpl& net, const ForwardBatch& timed,
                 const torch::Tensor& timed_out, const ForwardBatch& mixed,
                 const torch::Tensor& mixed_out, int threads) {
  TempDir tmp("dit-bench-protein");
  if (o.keep_temp) tmp.keep();
  const std::string weights = tmp.path() + "/weights.safetensors";
  const std::string inputs = tmp.path() + "/inputs.safetensors";
  save_flow_net(weights, net, {{"format", "dit-bench weights"}});
  TensorMap m;
  for (const auto& [prefix, b, out] : {std::tuple{"timed.", &timed, &timed_out},
                                       std::tuple{"mixed.", &mixed, &mixed_out}}) {
    const std::string p = prefix;
    m[p + "x"] = b->x;
    m[p + "t"] = b->t;
    m[p + "features"] = b->inputs.features;
    m[p + "mask"] = b->inputs.mask.to(torch::kLong);
    m[p + "cond"] = b->inputs.cond;
    m[p + "engine_out"] = *out;
  }
  save_safetensors(inputs, m, {});
  const std::vector<std::string> argv = {
      o.python, o.pytorch_script, "--weights", weights, "--inputs", inputs,
      "--threads", std::to_string(threads), "--warmup", std::to_string(o.protocol.warmup),
      "--iters", std::to_string(o.protocol.iters), "--min-time", fmt::format("{}", o.protocol.min_time),
      "--min-iters", std::to_string(o.protocol.min_iters)};
  const std::string text = run_capture(argv);
  json py;
  try {
    py = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: output is not JSON ({}): {:.200}", o.pytorch_script, e.what(), text));
  }
  if (!py.contains("result") || !py.contains("parity") || py["parity"].size() != 2)
    throw Error(fmt::format("{}: unexpected output: {:.200}", o.pytorch_script, text));
  if (py["threads"].get<int>() != threads)
    throw Error(fmt::format("pytorch ran with {} threads, engine with {}", py["threads"].get<int>(),
                            threads));
  if (o.keep_temp) fmt::print(stderr, "kept {}\n", tmp.path());
  return py;
}

std::string spread(const Timing& t) {
  return fmt::format("{} [{}..{}]", ms_cell(t.median_ms), ms_cell(t.min_ms), ms_cell(t.max_ms));
}

void run_protein(const ProteinBenchOptions& o) {
  validate(o);
  if (!o.no_pytorch && !std::filesystem::exists(o.pytorch_script))
    throw Error(fmt::format("PyTorch script {} not found (set --pytorch-script)", o.pytorch_script));
  const std::string path = o.model.empty() ? protein::default_protein_model_path() : o.model;
  auto net = protein::load_protein_model(path);
  net->eval();
  int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  const int threads = set_threads(o.threads);
  const Machine mach = machine();
  const double load_before = load_average();
  const bool peak_resets = reset_peak_rss();

  fmt::print("dit-bench protein\n");
  fmt::print("command:   {}\n", g_command_line);
  fmt::print("machine:   {}; load average {:.2f} at start\n", mach.line(), load_before);
  fmt::print("threads:   {} (engine and pytorch intra-op; OpenMM relaxation: 1 thread per backbone)\n",
             threads);
  if (load_before >= 0.5 && load_before + threads > mach.cores + 0.25)
    fmt::print("warning:   load average {:.2f} on {} cores: timings are taken under load\n",
               load_before, mach.cores);
  fmt::print("model:     {} ({}), {:.2f} M parameters, f32, eval\n", net->describe(), path,
             parameters / 1e6);
  fmt::print("engine:    dit-engine on libtorch {}, TokenDiT::inference() under NoGradGuard (the "
             "sampler's path)\n",
             libtorch_version());
  fmt::print("memory:    resident set of this process; peak = VmHWM {}\n",
             peak_resets ? "reset before each phase (per-phase peak)"
                         : "NOT resettable here: cumulative process peak");
  std::fflush(stdout);

  protein::DecodeOptions no_relax;
  no_relax.relax = false;
  const protein::ProteinDomain rebuild_only(no_relax), relaxing;

  // ---- (a) forward --------------------------------------------------------------------------
  const ForwardBatch timed = make_batch(rebuild_only, std::vector<int64_t>(static_cast<size_t>(o.batch), o.length), o.seed);
  std::vector<int64_t> mixed_lengths;  // padding and key masks: 8 chains, lengths 40 .. length
  for (int64_t i = 0; i < 8; ++i)
    mixed_lengths.push_back(std::max<int64_t>(protein::kMinLength,
                                              std::min(o.length, 40 + (o.length - 40) * i / 7)));
  const ForwardBatch mixed = make_batch(rebuild_only, mixed_lengths, o.seed + 1);
  Timing engine;
  Memory m_forward;
  torch::Tensor timed_out, mixed_out;
  {
    torch::NoGradGuard no_grad;
    auto flow = net->inference();
    timed_out = flow(timed.x, timed.t, timed.inputs, {}).clone();
    mixed_out = flow(mixed.x, mixed.t, mixed.inputs, {}).clone();
    fmt::print("\nforward:   batch {} x length {} tokens; {}\n", o.batch, o.length, o.protocol.describe());
    std::fflush(stdout);
    reset_peak_rss();
    m_forward.rss_before_kb = status_kb("VmRSS");
    engine = time_runs([&] { (void)flow(timed.x, timed.t, timed.inputs, {}); }, o.protocol);
    m_forward.peak_kb = status_kb("VmHWM");
  }
  fmt::print(stderr, "engine forward: {} iters, median {:.2f} ms\n", engine.samples_ms.size(),
             engine.median_ms);
  json py;
  if (!o.no_pytorch) py = run_pytorch(o, *net, timed, timed_out, mixed, mixed_out, threads);

  bool parity_ok = true;
  if (!py.is_null()) {
    fmt::print("pytorch:   torch {} (python {}, {}), eager TokenDiT of {} (explicit softmax "
               "attention), inference_mode; peak RSS of its process {} MiB\n",
               py["torch_version"].get<std::string>(), py["python"].get<std::string>(), o.python,
               o.pytorch_script, mib(py["peak_rss_kb"].get<int64_t>()));
    for (auto& par : py["parity"]) {
      const double diff = par["max_abs_diff"].get<double>();
      const double tol = o.parity_tol * std::max(1.0, par["max_abs_output"].get<double>());
      const bool ok = diff <= tol;
      parity_ok = parity_ok && ok;
      par["tolerance"] = tol;
      par["ok"] = ok;
      fmt::print("parity:    {}: max |engine - pytorch| = {:.3g} (mean {:.3g}; max |out| {:.3g}, "
                 "rms {:.3g}); tolerance {:.3g}: {}\n",
                 par["name"].get<std::string>(), diff, par["mean_abs_diff"].get<double>(),
                 par["max_abs_output"].get<double>(), par["rms_output"].get<double>(), tol,
                 ok ? "ok" : "FAILED");
    }
  }
  fmt::print("\n{:>14}  {:>22}  {:>22}  {:>7}  {:>14}\n", "B x L", "engine ms [min..max]",
             "pytorch ms [min..max]", "ratio", "engine peak MiB");
  std::string pcell = py.is_null() ? "-" : "";
  double ratio = 0;
  if (!py.is_null()) {
    const auto& r = py["result"];
    pcell = fmt::format("{} [{}..{}]", ms_cell(r["median_ms"].get<double>()),
                        ms_cell(r["min_ms"].get<double>()), ms_cell(r["max_ms"].get<double>()));
    ratio = r["median_ms"].get<double>() / engine.median_ms;
  }
  fmt::print("{:>14}  {:>22}  {:>22}  {:>7}  {:>14}\n", fmt::format("{} x {}", o.batch, o.length),
             spread(engine), pcell, py.is_null() ? "-" : fmt::format("{:.2f}", ratio),
             mib(m_forward.peak_kb));
  if (!py.is_null())
    fmt::print("ratio = pytorch ms / engine ms (> 1: engine faster); medians of {} and {} runs\n",
               engine.samples_ms.size(), py["result"]["iters"].get<int64_t>());
  std::fflush(stdout);

  // ---- (b) sampling -------------------------------------------------------------------------
  const std::vector<ProteinRequest> requests(static_cast<size_t>(o.batch), ProteinRequest{o.length});
  FlowSampling sampling;
  sampling.sampler = o.sampler;
  sampling.seed = o.seed;
  sampling.chunk = o.chunk;
  sampling.options.steps = o.steps;
  const int64_t chunks = (o.batch + o.chunk - 1) / o.chunk;
  fmt::print("\nsampling:  {} backbones of length {}: {} {} steps, {} chains per model batch ({} "
             "batches); relax {}; warmup {}, then {} timed repeats; median [min..max]\n",
             o.batch, o.length, o.sampler, o.steps, o.chunk, chunks, !o.no_relax ? "on" : "off",
             o.sample_protocol.warmup, o.sample_protocol.iters);
  std::fflush(stdout);
  for (int i = 0; i < o.sample_protocol.warmup; ++i)
    sample_once(o, *net, rebuild_only, relaxing, requests, sampling, nullptr);
  PhaseTimes p;
  for (int i = 0; i < o.sample_protocol.iters; ++i) {
    sample_once(o, *net, rebuild_only, relaxing, requests, sampling, &p);
    fmt::print(stderr, "sampling repeat {}: {:.0f} ms\n", i + 1, p.total.back());
  }
  struct Row {
    const char* name;
    const std::vector<double>* samples;
    const Memory* memory;
    const char* what;
  };
  std::vector<Row> rows = {
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
  fmt::print("{:>14}  {:>26}  {:>6}  {:>9}  {:>10}  {}\n", "phase", "ms [min..max]", "share",
             "peak MiB", "growth MiB", "what");
  const double total_median = summarize(p.total).median_ms;
  json phases = json::object();
  for (const auto& r : rows) {
    const Timing t = summarize(*r.samples);
    std::string peak = "-", growth = "-";
    json j = timing_json(t, o.batch);
    j.erase("img_per_s");
    j["backbones_per_s"] = o.batch * 1e3 / t.median_ms;
    if (r.memory) {
      peak = mib(r.memory->peak_kb);
      growth = mib(r.memory->peak_kb - r.memory->rss_before_kb);
      j["memory"] = r.memory->to_json();
    }
    fmt::print("{:>14}  {:>26}  {:>5.1f}%  {:>9}  {:>10}  {}\n", r.name, spread(t),
               100 * t.median_ms / total_median, peak, growth, r.what);
    phases[r.name] = j;
  }
  const double per_eval = summarize(p.sample).median_ms / (static_cast<double>(o.steps) * chunks);
  fmt::print("sampling: {:.1f} backbones/s end to end; {:.2f} ms per model batch evaluation "
             "({} steps x {} batches); checks passed by {} of {} ({} finite) in the last repeat\n",
             o.batch * 1e3 / total_median, per_eval, o.steps, chunks, p.valid, o.batch, p.finite);
  fmt::print("peak MiB = VmHWM during the phase (the whole process: model, inputs, libtorch); "
             "growth = that peak - RSS at the phase's start\n");
  const int64_t hwm_now = status_kb("VmHWM");
  fmt::print("load average {:.2f} at end\n", load_average());

  if (!o.json_out.empty()) {
    json doc = {
        {"benchmark", "protein"},
        {"command", g_command_line},
        {"machine",
         {{"cpu", mach.cpu}, {"cores", mach.cores}, {"load_average_start", load_before},
          {"load_average_end", load_average()}}},
        {"threads", threads},
        {"model", {{"path", path}, {"describe", net->describe()}, {"parameters", parameters},
                   {"metadata", net->metadata()}}},
        {"memory_measure", peak_resets ? "VmHWM reset per phase (/proc/self/clear_refs 5)"
                                       : "VmHWM cumulative (reset refused)"},
        {"forward",
         {{"batch", o.batch}, {"length", o.length},
          {"protocol", {{"warmup", o.protocol.warmup}, {"iters", o.protocol.iters},
                        {"min_time_s", o.protocol.min_time}, {"min_iters", o.protocol.min_iters},
                        {"statistic", "median"}}},
          {"engine", timing_json(engine, o.batch)},
          {"engine_memory", m_forward.to_json()}}},
        {"sampling",
         {{"backbones", o.batch}, {"length", o.length}, {"sampler", o.sampler},
          {"steps", o.steps}, {"chunk", o.chunk}, {"relax", !o.no_relax},
          {"warmup", o.sample_protocol.warmup}, {"repeats", o.sample_protocol.iters},
          {"phases", phases}, {"valid", p.valid}, {"finite", p.finite}}},
        {"process_peak_rss_mib", hwm_now / 1024.0},
    };
    if (!py.is_null()) {
      doc["forward"]["pytorch"] = py["result"];
      doc["forward"]["ratio"] = ratio;
      doc["pytorch"] = {{"torch", py["torch_version"]}, {"python", py["python"]},
                        {"executable", o.python}, {"script", o.pytorch_script},
                        {"peak_rss_mib", py["peak_rss_kb"].get<int64_t>() / 1024.0}};
      doc["parity"] = py["parity"];
    }
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
  if (!parity_ok)
    throw Error(fmt::format("parity check failed (tolerance {:.3g}, times max(1, max |out|)): the "
                            "engine and the PyTorch TokenDiT do not compute the same function",
                            o.parity_tol));
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
  cmd->add_option("--threads", o->threads, "Intra-op threads for both sides (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the noise and times")->capture_default_str();
  cmd->add_option("--warmup", o->protocol.warmup, "Untimed forwards")->capture_default_str();
  auto* iters = cmd->add_option("--iters", o->protocol.iters,
                                "Timed forwards (default: run until --min-time)");
  cmd->add_option("--min-time", o->protocol.min_time, "Seconds of timed forwards (without --iters)")
      ->capture_default_str()
      ->excludes(iters);
  cmd->add_option("--min-iters", o->protocol.min_iters, "At least this many timed forwards")
      ->capture_default_str();
  cmd->add_option("--sample-warmup", o->sample_protocol.warmup, "Untimed full samplings")
      ->capture_default_str();
  cmd->add_option("--sample-repeats", o->sample_protocol.iters, "Timed full samplings")
      ->capture_default_str();
  cmd->add_flag("--no-relax", o->no_relax, "Skip the OpenMM relaxation (decode rebuilds only)");
  cmd->add_flag("--no-pytorch", o->no_pytorch, "Time the engine only");
  cmd->add_option("--pytorch-script", o->pytorch_script, "PyTorch baseline script")
      ->capture_default_str();
  cmd->add_option("--python", o->python, "Python interpreter with torch")->capture_default_str();
  cmd->add_option("--parity-tol", o->parity_tol,
                  "Max |engine - pytorch| allowed, times max(1, max |output|)")
      ->capture_default_str();
  cmd->add_option("--json", o->json_out, "Write the results as JSON");
  cmd->add_flag("--keep-temp", o->keep_temp, "Keep the temporary weights and inputs");
  cmd->callback([o] {
#ifdef DIT_HAVE_PROTEIN
    run_protein(*o);
#else
    validate(*o);
    throw Error("dit-bench protein: this build has no protein component (libdit_protein: needs "
                "OpenMM, gemmi and HDF5; see the CMake configure messages)");
#endif
  });
}

}  // namespace dit::bench
