// The shared part of the token-DiT domain benchmarks (token_bench.h): dit-bench protein
// (protein_bench.cpp) and dit-bench crystal (crystal_bench.cpp).
#include "token_bench.h"

#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <dit/fs.h>
#include <tuple>

namespace dit::bench {

using json = nlohmann::json;

void add_token_bench_options(CLI::App* cmd, TokenBenchOptions& o) {
  cmd->add_option("-t,--threads", o.threads, "Intra-op threads for both sides (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the noise and times")->capture_default_str();
  cmd->add_option("--warmup", o.protocol.warmup, "Untimed forwards (at least)")->capture_default_str();
  cmd->add_option("--warmup-time", o.protocol.warmup_time, "Seconds of untimed forwards (at least)")
      ->capture_default_str();
  auto* iters = cmd->add_option("--iters", o.protocol.iters,
                                "Timed forwards (default: run until --min-time)");
  cmd->add_option("--min-time", o.protocol.min_time, "Seconds of timed forwards (without --iters)")
      ->capture_default_str()
      ->excludes(iters);
  cmd->add_option("--min-iters", o.protocol.min_iters, "At least this many timed forwards")
      ->capture_default_str();
  cmd->add_option("--sample-warmup", o.sample_protocol.warmup, "Untimed full samplings")
      ->capture_default_str();
  cmd->add_option("--sample-repeats", o.sample_protocol.iters, "Timed full samplings")
      ->capture_default_str();
  cmd->add_flag("--no-pytorch", o.no_pytorch, "Time the engine only");
  cmd->add_option("--pytorch-script", o.pytorch_script, "PyTorch baseline script")
      ->capture_default_str();
  cmd->add_option("--python", o.python, "Python interpreter with torch")->capture_default_str();
  cmd->add_option("--parity-tol", o.parity_tol,
                  "Max |engine - pytorch| allowed, times max(1, max |output|)")
      ->capture_default_str();
  cmd->add_option("--json", o.json_out, "Write the results as JSON");
  cmd->add_flag("--keep-temp", o.keep_temp, "Keep the temporary weights and inputs");
}

void validate_token_bench(const TokenBenchOptions& o) {
  if (o.steps <= 0) throw Error(fmt::format("--steps must be positive, got {}", o.steps));
  if (o.protocol.warmup < 0 || o.sample_protocol.warmup < 0)
    throw Error("--warmup and --sample-warmup must be >= 0");
  if (o.protocol.iters < 0) throw Error("--iters must be >= 0");
  if (o.sample_protocol.iters < 1) throw Error("--sample-repeats must be >= 1");
  if (!(o.protocol.min_time >= 0)) throw Error("--min-time must be >= 0");
  if (o.protocol.min_iters < 1) throw Error("--min-iters must be >= 1");
  if (!(o.parity_tol > 0)) throw Error("--parity-tol must be positive");
}

BenchStart start_token_bench(const std::string& name, const TokenBenchOptions& o, FlowNetImpl& net,
                             const std::string& model_path, const std::string& threads_note) {
  if (!o.no_pytorch && !dit::fs::exists(o.pytorch_script))
    throw Error(fmt::format("PyTorch script {} not found (set --pytorch-script)", o.pytorch_script));
  BenchStart s;
  s.model_path = model_path;
  for (const auto& p : net.parameters()) s.parameters += p.numel();
  s.threads = set_threads(o.threads);
  s.machine = machine();
  s.load_before = load_average();
  s.peak_resets = reset_peak_rss();

  fmt::print("dit-bench {}\n", name);
  fmt::print("command:   {}\n", g_command_line);
  fmt::print("machine:   {}; load average {:.2f} at start\n", s.machine.line(), s.load_before);
  fmt::print("threads:   {} (engine and pytorch intra-op{})\n", s.threads, threads_note);
  if (s.load_before >= 0.5 && s.load_before + s.threads > s.machine.cores + 0.25)
    fmt::print("warning:   load average {:.2f} on {} cores: timings are taken under load\n",
               s.load_before, s.machine.cores);
  fmt::print("model:     {} ({}), {:.2f} M parameters, f32, eval\n", net.describe(), model_path,
             s.parameters / 1e6);
  fmt::print("engine:    dit-engine on libtorch {}, TokenDiT::inference() under NoGradGuard (the "
             "sampler's path)\n",
             libtorch_version());
  fmt::print("memory:    resident set of this process; peak = VmHWM {}\n",
             s.peak_resets ? "reset before each phase (per-phase peak)"
                           : "NOT resettable here: cumulative process peak");
  std::fflush(stdout);
  return s;
}

namespace {

// The PyTorch side: weights and inputs to a temporary directory, the script in its own process.
json run_pytorch(const std::string& name, const TokenBenchOptions& o, FlowNetImpl& net,
                 const ForwardBatch& timed, const torch::Tensor& timed_out,
                 const ForwardBatch& mixed, const torch::Tensor& mixed_out, int threads) {
  TempDir tmp("dit-bench-" + name);
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
    if (b->inputs.labels.defined()) m[p + "labels"] = b->inputs.labels.to(torch::kLong);
    m[p + "engine_out"] = *out;
  }
  save_safetensors(inputs, m, {});
  const std::vector<std::string> argv = {
      o.python, o.pytorch_script, "--weights", weights, "--inputs", inputs,
      "--threads", std::to_string(threads), "--warmup", std::to_string(o.protocol.warmup),
      "--warmup-time", fmt::format("{}", o.protocol.warmup_time),
      "--iters", std::to_string(o.protocol.iters), "--min-time", fmt::format("{}", o.protocol.min_time),
      "--min-iters", std::to_string(o.protocol.min_iters)};
  const std::string text = run_capture(argv, baseline_env(threads));
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

// What the PyTorch model has beyond the protein TokenDiT (labels, periodic state features and
// pair inputs); `py` is the script's whole answer.
std::string pytorch_extras(const json& py) {
  const json config = py.value("config", json::object());
  std::string s;
  if (config.value("num_classes", 0) > 0)
    s += fmt::format(", label embedding ({} classes + null)", config["num_classes"].get<int64_t>());
  if (config.value("periodic_frequencies", 0) > 0)
    s += fmt::format(", periodic state features (sin/cos of 2 pi k x, k = 1..{})",
                     config["periodic_frequencies"].get<int64_t>());
  if (config.value("periodic_pairs", 0) > 0)
    s += fmt::format(", periodic pair inputs ({} frequencies x {} channels; vectorised vs loops: {:.2g})",
                     config["periodic_pairs"].get<int64_t>(), config.value("pair_channels", 0),
                     py.value("pair_inputs_vs_loops", -1.0));
  return s;
}

}  // namespace

ForwardComparison compare_forward(const std::string& name, const TokenBenchOptions& o,
                                  FlowNetImpl& net, const BenchStart& start,
                                  const ForwardBatch& timed, const ForwardBatch& mixed,
                                  const ForwardShape& shape) {
  ForwardComparison r;
  torch::Tensor timed_out, mixed_out;
  {
    torch::NoGradGuard no_grad;
    auto flow = net.inference();
    timed_out = flow(timed.x, timed.t, timed.inputs, {}).clone();
    mixed_out = flow(mixed.x, mixed.t, mixed.inputs, {}).clone();
    fmt::print("\nforward:   {}; {}\n", shape.describe, o.protocol.describe());
    std::fflush(stdout);
    reset_peak_rss();
    r.memory.rss_before_kb = status_kb("VmRSS");
    r.engine = time_runs([&] { (void)flow(timed.x, timed.t, timed.inputs, {}); }, o.protocol);
    r.memory.peak_kb = status_kb("VmHWM");
  }
  fmt::print(stderr, "engine forward: {} iters, median {:.2f} ms\n", r.engine.samples_ms.size(),
             r.engine.median_ms);
  json& py = r.pytorch;
  if (!o.no_pytorch)
    py = run_pytorch(name, o, net, timed, timed_out, mixed, mixed_out, start.threads);

  if (!py.is_null()) {
    fmt::print("pytorch:   torch {} (python {}, {}), eager TokenDiT of {} (explicit softmax "
               "attention{}), inference_mode; peak RSS of its process {} MiB\n",
               py["torch_version"].get<std::string>(), py["python"].get<std::string>(), o.python,
               o.pytorch_script, pytorch_extras(py),
               mib(py["peak_rss_kb"].get<int64_t>()));
    for (auto& par : py["parity"]) {
      const double diff = par["max_abs_diff"].get<double>();
      const double tol = o.parity_tol * std::max(1.0, par["max_abs_output"].get<double>());
      const bool ok = diff <= tol;
      r.parity_ok = r.parity_ok && ok;
      par["tolerance"] = tol;
      par["ok"] = ok;
      fmt::print("parity:    {}: max |engine - pytorch| = {:.3g} (mean {:.3g}; max |out| {:.3g}, "
                 "rms {:.3g}); tolerance {:.3g}: {}\n",
                 par["name"].get<std::string>(), diff, par["mean_abs_diff"].get<double>(),
                 par["max_abs_output"].get<double>(), par["rms_output"].get<double>(), tol,
                 ok ? "ok" : "FAILED");
    }
  }
  fmt::print("\n{:>14}  {:>22}  {:>22}  {:>7}  {:>14}\n", shape.header, "engine ms [min..max]",
             "pytorch ms [min..max]", "ratio", "engine peak MiB");
  std::string pcell = py.is_null() ? "-" : "";
  if (!py.is_null()) {
    const auto& res = py["result"];
    pcell = fmt::format("{} [{}..{}]", ms_cell(res["median_ms"].get<double>()),
                        ms_cell(res["min_ms"].get<double>()), ms_cell(res["max_ms"].get<double>()));
    r.ratio = res["median_ms"].get<double>() / r.engine.median_ms;
  }
  fmt::print("{:>14}  {:>22}  {:>22}  {:>7}  {:>14}\n", shape.cell, spread(r.engine), pcell,
             py.is_null() ? "-" : fmt::format("{:.2f}", r.ratio), mib(r.memory.peak_kb));
  if (!py.is_null())
    fmt::print("ratio = pytorch ms / engine ms (> 1: engine faster); medians of {} and {} runs\n",
               r.engine.samples_ms.size(), py["result"]["iters"].get<int64_t>());
  std::fflush(stdout);
  return r;
}

json print_phases(const std::vector<PhaseRow>& rows, const std::vector<double>& total,
                  int64_t count, const std::string& per_s_key) {
  fmt::print("{:>14}  {:>26}  {:>6}  {:>9}  {:>10}  {}\n", "phase", "ms [min..max]", "share",
             "peak MiB", "growth MiB", "what");
  const double total_median = summarize(total).median_ms;
  json phases = json::object();
  for (const auto& r : rows) {
    const Timing t = summarize(*r.samples);
    std::string peak = "-", growth = "-";
    json j = timing_json(t, count);
    j.erase("img_per_s");
    j[per_s_key] = count * 1e3 / t.median_ms;
    if (r.memory) {
      peak = mib(r.memory->peak_kb);
      growth = mib(r.memory->peak_kb - r.memory->rss_before_kb);
      j["memory"] = r.memory->to_json();
    }
    fmt::print("{:>14}  {:>26}  {:>5.1f}%  {:>9}  {:>10}  {}\n", r.name, spread(t),
               100 * t.median_ms / total_median, peak, growth, r.what);
    phases[r.name] = j;
  }
  return phases;
}

void finish_token_bench(const std::string& name, const TokenBenchOptions& o, FlowNetImpl& net,
                        const BenchStart& start, const ForwardComparison& fwd,
                        const json& forward, const json& sampling) {
  fmt::print("peak MiB = VmHWM during the phase (the whole process: model, inputs, libtorch); "
             "growth = that peak - RSS at the phase's start\n");
  const int64_t hwm_now = status_kb("VmHWM");
  fmt::print("load average {:.2f} at end\n", load_average());

  if (!o.json_out.empty()) {
    json f = forward;
    f["protocol"] = {{"warmup", o.protocol.warmup}, {"iters", o.protocol.iters},
                     {"min_time_s", o.protocol.min_time}, {"min_iters", o.protocol.min_iters},
                     {"statistic", "median"}};
    f["engine"] = timing_json(fwd.engine, f.value("batch", int64_t{1}));
    f["engine_memory"] = fwd.memory.to_json();
    json doc = {
        {"benchmark", name},
        {"command", g_command_line},
        {"machine",
         {{"cpu", start.machine.cpu}, {"cores", start.machine.cores},
          {"load_average_start", start.load_before}, {"load_average_end", load_average()}}},
        {"threads", start.threads},
        {"model", {{"path", start.model_path}, {"describe", net.describe()},
                   {"parameters", start.parameters}, {"metadata", net.metadata()}}},
        {"memory_measure", start.peak_resets ? "VmHWM reset per phase (/proc/self/clear_refs 5)"
                                             : "VmHWM cumulative (reset refused)"},
        {"sampling", sampling},
        {"process_peak_rss_mib", hwm_now / 1024.0},
    };
    const json& py = fwd.pytorch;
    if (!py.is_null()) {
      f["pytorch"] = py["result"];
      f["ratio"] = fwd.ratio;
      doc["pytorch"] = {{"torch", py["torch_version"]}, {"python", py["python"]},
                        {"executable", o.python}, {"script", o.pytorch_script},
                        {"peak_rss_mib", py["peak_rss_kb"].get<int64_t>() / 1024.0}};
      doc["parity"] = py["parity"];
    }
    doc["forward"] = f;
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
  if (!fwd.parity_ok)
    throw Error(fmt::format("parity check failed (tolerance {:.3g}, times max(1, max |out|)): the "
                            "engine and the PyTorch TokenDiT do not compute the same function",
                            o.parity_tol));
}

}  // namespace dit::bench
