// dit-bench cli: the whole command a user runs, `dit image sample` (a new process each time:
// start-up, loading, sampling, output), against a warmed-up PyTorch eager loop of the same
// sampling on the same weights and threads (apps/bench/pytorch_sample.py), in one run.
//
//   dit-bench cli [--config S/2 | --model file] [--batch 8] [--steps 4] [--cfg-scale 3]
//                 [--precision fp32,bf16] [--repeats 5] [--threads N] [--json out.json]
#include <CLI/CLI.hpp>
#include <dit/error.h>
#include <dit/files.h>
#include <dit/model.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <dit/fs.h>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "bench_common.h"

namespace dit::bench {

namespace fs = dit::fs;
using json = nlohmann::json;

void randomize_parameters(torch::nn::Module& model, uint64_t seed);  // dit_bench.cpp
extern std::string g_command_line;                                    // dit_bench.cpp

namespace {

struct CliOptions {
  std::string config = "S/2", model;
  int64_t batch = 8;
  int steps = 4, threads = 0, repeats = 5;
  double cfg_scale = 3.0;
  std::vector<std::string> precisions = {"fp32", "bf16"};
  std::string dit;  // default: the dit next to dit-bench
  std::string python = "/usr/bin/python3";
  std::string pytorch_script = std::string(DIT_BENCH_SCRIPT_DIR) + "/pytorch_sample.py";
  bool no_pytorch = false;
  double warmup_time = 2.0;
  std::string json_out;
  uint64_t seed = 0;
};

std::string default_dit() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("dit") : (self.parent_path() / "dit").string();
}

// Runs a command line, returns (wall seconds, stdout + stderr). Throws on a non-zero exit.
std::pair<double, std::string> run_timed(const std::vector<std::string>& argv) {
  const auto start = std::chrono::steady_clock::now();
  std::string out = run_capture(argv, {}, /*merge_stderr=*/true);
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), out};
}

struct CliRun {
  Timing wall_ms, startup_ms, sampling_ms;
  std::string linears;
};

CliRun time_cli(const CliOptions& o, const std::string& dit, const std::string& weights,
                const std::string& precision, int threads) {
  const std::vector<std::string> argv = {
      dit, "image", "sample", "-m", weights, "-b", std::to_string(o.batch), "--steps",
      std::to_string(o.steps), "--sampler", "euler", "--cfg-scale", fmt::format("{}", o.cfg_scale),
      "-o", "", "--seed", "1", "--threads", std::to_string(threads), "--precision", precision,
      "--timings"};
  const std::regex line(R"(timings: start-up ([0-9.]+) s .*sampling ([0-9.]+) s.*linears (\w+))");
  std::vector<double> wall, startup, sampling;
  CliRun r;
  for (int i = -1; i < o.repeats; ++i) {  // i = -1: untimed (page cache, autotune cache)
    auto [secs, out] = run_timed(argv);
    std::smatch m;
    if (!std::regex_search(out, m, line))
      throw Error(fmt::format("{}: no 'timings:' line in its output:\n{}", dit, out));
    if (i < 0) continue;
    wall.push_back(secs * 1e3);
    startup.push_back(std::stod(m[1]) * 1e3);
    sampling.push_back(std::stod(m[2]) * 1e3);
    r.linears = m[3];
  }
  r.wall_ms = summarize(wall), r.startup_ms = summarize(startup), r.sampling_ms = summarize(sampling);
  return r;
}

void run_cli(const CliOptions& o) {
  if (o.batch < 1 || o.steps < 1 || o.repeats < 1) throw Error("--batch, --steps and --repeats must be >= 1");
  const std::string dit = o.dit.empty() ? default_dit() : o.dit;
  if (!fs::exists(dit)) throw Error(fmt::format("{} not found (give --dit)", dit));
  for (const auto& p : o.precisions)
    if (p != "fp32" && p != "bf16") throw Error(fmt::format("--precision: fp32 or bf16, got '{}'", p));
  TempDir tmp("dit-bench-cli");
  std::string weights = o.model;
  std::string description;
  if (weights.empty()) {
    DiTConfig config = DiTConfig::preset(o.config);
    DiT model(config);
    randomize_parameters(*model, o.seed);
    weights = tmp.path() + "/weights.safetensors";
    save_dit(weights, model, torch::kFloat32, {{"format", "dit-bench weights"}});
    description = fmt::format("DiT-{} (random weights, seed {}): {}", o.config, o.seed, config.describe());
  } else {
    description = fmt::format("{}: {}", o.model, load_dit(o.model)->config().describe());
  }
  const int threads = o.threads > 0 ? o.threads : set_threads(0);
  const Machine mach = machine();
  const double load_before = load_average();
  fmt::print("dit-bench cli\n");
  fmt::print("command:   {}\n", g_command_line);
  fmt::print("machine:   {}; load average {:.2f} at start\n", mach.line(), load_before);
  fmt::print("cpu flags: {}\n", cpu_flags_line());
  fmt::print("threads:   {} (both sides)\n", threads);
  fmt::print("model:     {}\n", description);
  fmt::print("job:       {} images, euler {} steps, cfg scale {} (batch {} per forward with CFG)\n",
             o.batch, o.steps, o.cfg_scale, o.cfg_scale != 1.0 ? 2 * o.batch : o.batch);
  fmt::print("engine:    {} image sample ... --precision P --timings, a new process per run: 1 "
             "untimed, then {} timed (wall clock: start-up, load, sampling, exit)\n", dit, o.repeats);
  std::fflush(stdout);

  json py;
  if (!o.no_pytorch) {
    const std::vector<std::string> argv = {
        o.python, o.pytorch_script, "--weights", weights, "--batch", std::to_string(o.batch),
        "--steps", std::to_string(o.steps), "--cfg-scale", fmt::format("{}", o.cfg_scale),
        "--threads", std::to_string(threads), "--repeats", std::to_string(o.repeats),
        "--warmup-time", fmt::format("{}", o.warmup_time)};
    const std::string text = run_capture(argv, baseline_env(threads));
    try {
      py = json::parse(text);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: output is not JSON ({})", o.pytorch_script, e.what()));
    }
    fmt::print("pytorch:   torch {} (python {}), eager, inference_mode, {} threads: the sampling "
               "loop in one warmed-up process (warm-up {:.1f} s), {} timed loops\n",
               py["torch_version"].get<std::string>(), py["python"].get<std::string>(),
               py["threads"].get<int>(), py["loop"]["warmup_s"].get<double>(), o.repeats);
  }
  fmt::print("\n{:>9}  {:>24}  {:>22}  {:>22}  {:>24}  {:>7}\n", "linears", "CLI wall ms [min..max]",
             "start-up ms", "sampling ms", "pytorch loop ms", "ratio");
  json rows = json::array();
  for (const auto& p : o.precisions) {
    const CliRun r = time_cli(o, dit, weights, p, threads);
    json row = {{"precision", p}, {"linears", r.linears}, {"cli_wall", timing_json(r.wall_ms, o.batch)},
                {"startup", timing_json(r.startup_ms, 1)}, {"sampling", timing_json(r.sampling_ms, o.batch)}};
    std::string pcell = "-", ratio = "-";
    if (!py.is_null()) {
      const auto& l = py["loop"];
      const double pms = l["median_ms"].get<double>();
      pcell = fmt::format("{} [{}..{}]", ms_cell(pms), ms_cell(l["min_ms"].get<double>()),
                          ms_cell(l["max_ms"].get<double>()));
      ratio = fmt::format("{:.2f}", pms / r.wall_ms.median_ms);
      row["pytorch_loop"] = l;
      row["ratio"] = pms / r.wall_ms.median_ms;
    }
    fmt::print("{:>9}  {:>24}  {:>22}  {:>22}  {:>24}  {:>7}\n",
               p + (r.linears != p ? "->" + r.linears : ""), spread(r.wall_ms), spread(r.startup_ms),
               spread(r.sampling_ms), pcell, ratio);
    std::fflush(stdout);
    rows.push_back(row);
  }
  fmt::print("ratio = pytorch loop ms / CLI wall ms (> 1: the whole CLI, start-up included, is "
             "faster than PyTorch's warmed-up loop alone); start-up = process start to model "
             "loaded (dit --timings); medians; load average {:.2f} at end\n",
             load_average());
  if (!o.json_out.empty()) {
    json doc = {{"benchmark", "cli"}, {"command", g_command_line},
                {"machine", {{"cpu", mach.cpu}, {"cores", mach.cores}, {"flags", cpu_flags_line()},
                             {"load_average_start", load_before}, {"load_average_end", load_average()}}},
                {"threads", threads}, {"model", description}, {"batch", o.batch}, {"steps", o.steps},
                {"cfg_scale", o.cfg_scale}, {"results", rows}};
    if (!py.is_null()) doc["pytorch"] = py;
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
}

}  // namespace

void add_cli(CLI::App& app) {
  auto o = std::make_shared<CliOptions>();
  auto* cmd = app.add_subcommand(
      "cli", "The whole `dit image sample` command (new process per run) against a warmed-up "
             "PyTorch eager sampling loop on the same weights and threads");
  cmd->add_option("--config", o->config, "DiT preset with random weights")->capture_default_str();
  cmd->add_option("--model", o->model, "A model file instead of a preset");
  cmd->add_option("-b,--batch", o->batch, "Images")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Euler steps")->capture_default_str();
  cmd->add_option("--cfg-scale", o->cfg_scale, "Guidance scale (1: off)")->capture_default_str();
  cmd->add_option("--precision", o->precisions, "Engine linears, comma separated: fp32, bf16")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "Timed runs per side")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads for both sides (0: all cores)")->capture_default_str();
  cmd->add_option("--warmup-time", o->warmup_time, "PyTorch warm-up seconds (whole loops)")
      ->capture_default_str();
  cmd->add_option("--dit", o->dit, "The dit executable (default: next to dit-bench)");
  cmd->add_option("--python", o->python, "Python interpreter with torch")->capture_default_str();
  cmd->add_option("--pytorch-script", o->pytorch_script, "PyTorch baseline script")->capture_default_str();
  cmd->add_flag("--no-pytorch", o->no_pytorch, "Time the CLI only");
  cmd->add_option("--seed", o->seed, "Seed of the random weights")->capture_default_str();
  cmd->add_option("--json", o->json_out, "Write the results as JSON");
  cmd->callback([o] { run_cli(*o); });
}

}  // namespace dit::bench
