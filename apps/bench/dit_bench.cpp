// dit-bench: speed measurements of the engine against baselines measured in the same run on the
// same machine (see DESIGN.md, "Measuring"). One function per subcommand: add_<name> registers
// the options, run_<name> measures and prints.
//
//   dit-bench forward --config S/2 --batch 1,8,32 [--threads N] [--warmup 2]
//                     [--iters N | --min-time 2.0] [--model file.safetensors] [--no-pytorch]
//                     [--json out.json]
//
//   dit-bench attention [--shape B,H,N,D ...] [--threads N] [--mask-fraction F] [--json out.json]
//   dit-bench adaln [--shape B,N,D ...] [--threads N] [--json out.json]
//   dit-bench gemm [--shape M,K,N ...] [--threads N] [--json out.json]
//   dit-bench autotune [--shape B,H,N,D ...] [--threads N] [--keep] [--json out.json]
//   dit-bench protein [--model file.safetensors] [--batch 100] [--length 100] [--steps 50]
//                     [--threads N] [--json out.json]          (protein_bench.cpp)
//   dit-bench crystal [--model file.safetensors] [--composition Ba4Ti4O12] [--cells 20]
//                     [--steps 50] [--threads N] [--json out.json]  (crystal_bench.cpp)
//
// attention: the fused CPU attention (every ISA this CPU has) against libtorch's
// _scaled_dot_product_attention and against the reference path, on the same inputs and threads,
// timed in interleaved rounds (one call of each contender per round).
// adaln: fused LayerNorm+modulate and gate+residual against the reference libtorch ops.
// gemm: the DiT linear layers, fp32 torch::linear (OpenBLAS) against libtorch's oneDNN bf16 and
// fp32 paths.
//
// forward: the DiT forward pass of the engine (f32, inference mode) against a PyTorch-eager DiT
// with the reference module structure (apps/bench/pytorch_forward.py), which loads the same
// weights, runs the same inputs with the same timing protocol, and checks that its output
// matches the engine's on one batch.
#include <CLI/CLI.hpp>
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/linear.h>
#include <dit/kernels.h>
#include <dit/model.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dit/fs.h>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../autotune_flag.h"
#include "bench_common.h"
#include "../report_error.h"
#include "kernels/backends.h"

#ifndef DIT_BENCH_SCRIPT_DIR
#define DIT_BENCH_SCRIPT_DIR "apps/bench"
#endif

namespace fs = dit::fs;
using json = nlohmann::json;

namespace dit::bench {

// ---- shared pieces (declared in bench_common.h) -------------------------------------------------

// The 1-minute load average from /proc/loadavg (negative when unreadable): printed beside the
// timings, since other processes on the machine show up as noise in them.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

Machine machine() {
  Machine m;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  bool named = false;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = line.substr(std::min(line.size(), colon + 2));
    if (key == "processor") ++m.cores;
    if (key == "model name" && !named) m.cpu = value, named = true;
  }
  if (m.cores == 0) m.cores = static_cast<int>(std::thread::hardware_concurrency());
  return m;
}

std::string cpu_flags_line() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string w, out;
    while (words >> w)
      if (w == "fma" || w == "avx2" || w.rfind("avx512", 0) == 0 || w.rfind("amx", 0) == 0)
        out += (out.empty() ? "" : " ") + w;
    return out.empty() ? "none of fma/avx2/avx512/amx" : out;
  }
  return "unknown";
}

std::string libtorch_version() { return TORCH_VERSION; }

Timing summarize(std::vector<double> samples) {
  Timing t;
  t.samples_ms = samples;
  if (samples.empty()) return t;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  t.median_ms = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  t.min_ms = samples.front();
  t.max_ms = samples.back();
  t.mean_ms = std::accumulate(samples.begin(), samples.end(), 0.0) / n;
  double var = 0;
  for (double s : samples) var += (s - t.mean_ms) * (s - t.mean_ms);
  t.stdev_ms = n > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  return t;
}

// Several contenders timed in rounds (one call of each per round, in turn), so that a change of
// background load affects all of them alike; the same warmup / iters / min-time rules per
// contender as time_runs, min_time counted on the slowest.
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& fns,
                                     const Protocol& p) {
  using clock = std::chrono::steady_clock;
  p.warm_up([&] {
    for (const auto& fn : fns) fn();
  });
  std::vector<std::vector<double>> samples(fns.size());
  std::vector<double> total(fns.size(), 0.0);
  while (true) {
    for (size_t k = 0; k < fns.size(); ++k) {
      auto start = clock::now();
      fns[k]();
      const double dt = std::chrono::duration<double>(clock::now() - start).count();
      samples[k].push_back(dt * 1e3);
      total[k] += dt;
    }
    const int n = static_cast<int>(samples[0].size());
    const double slowest = *std::max_element(total.begin(), total.end());
    if (p.iters > 0 ? n >= p.iters : slowest >= p.min_time && n >= p.min_iters) break;
  }
  std::vector<Timing> out;
  for (auto& s : samples) out.push_back(summarize(std::move(s)));
  return out;
}

json timing_json(const Timing& t, int64_t batch) {
  return {{"iters", t.samples_ms.size()}, {"median_ms", t.median_ms}, {"min_ms", t.min_ms},
          {"max_ms", t.max_ms},           {"mean_ms", t.mean_ms},     {"stdev_ms", t.stdev_ms},
          {"img_per_s", batch * 1e3 / t.median_ms}, {"samples_ms", t.samples_ms}};
}


std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs argv through /bin/sh; returns its stdout (stderr passes through). Throws on failure.
std::vector<std::string> baseline_env(int threads) {
  const std::string n = std::to_string(threads);
  return {"OMP_NUM_THREADS=" + n, "OPENBLAS_NUM_THREADS=" + n, "MKL_NUM_THREADS=" + n};
}

std::string run_capture(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        bool merge_stderr) {
  std::string cmd = env.empty() ? "" : "env";
  for (const auto& e : env) cmd += " " + shell_quote(e);
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
  if (merge_stderr) cmd += " 2>&1";
  std::fflush(nullptr);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw Error(fmt::format("cannot run {}", argv.front()));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(fmt::format("{} failed (exit status {}){}", argv.size() > 1 ? argv[1] : argv[0],
                            status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                            merge_stderr ? ":\n" + out : "; its error is printed above"));
  return out;
}

std::string join_argv(int argc, char** argv) {
  std::string s = "dit-bench";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool plain = !a.empty() && a.find_first_of(" \t'\"$\\*?;&|<>()") == std::string::npos;
    s += " " + (plain ? a : shell_quote(a));
  }
  return s;
}

std::string g_command_line;  // for the JSON record

// ---- forward ------------------------------------------------------------------------------------

struct ForwardOptions {
  std::string config = "S/2";
  std::vector<int64_t> batches = {1, 8, 32};
  int threads = 0;
  Protocol protocol;
  std::string model;
  bool no_pytorch = false;
  std::optional<int64_t> input_size, channels;
  std::string pytorch_script = std::string(DIT_BENCH_SCRIPT_DIR) + "/pytorch_forward.py";
  std::string python = "/usr/bin/python3";
  std::string json_out;
  uint64_t seed = 0;
  std::optional<double> parity_tol;  // default: 1e-4 in f32, 5e-2 in bf16 / fp16
  std::string device = "cpu";        // cpu | cuda: both sides run there
  std::string dtype = "f32";         // f32 | bf16 | fp16 (16-bit: --device cuda)
  bool cuda_graph = false;           // also time the engine's forward replayed as a CUDA graph
  bool compile = false;              // also time torch.compile on the PyTorch side
  bool keep_temp = false;
  std::string kernels = "auto";  // kernel backend of the engine (kernels::ScopedBackend)
  bool module_forward = false;   // time DiT::forward instead of the sampling path (DiTInference)
  std::string precision = "fp32";  // the engine's linears on the CPU (the baseline stays fp32)
  bool cross_check = true;       // time the PyTorch baseline in a second, separate process too
  bool compare_paths = false;    // also time reference / cpu forward / cpu inference interleaved
};

// Random, non-zero values for every parameter (the adaLN-Zero initialisation leaves the
// modulation and output layers at zero, which would make most of the network a no-op):
// weights N(0, 1/fan_in), biases N(0, 0.02^2), the class table N(0, 1). Each tensor draws from
// its own generator (seed, index), so the values do not depend on the thread count.
void randomize_parameters(torch::nn::Module& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  uint64_t index = 0;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    auto& p = item.value();
    auto gen = sample_generator(seed, index++);
    double std = 0.02;
    if (item.key().find("embedding_table") != std::string::npos)
      std = 1.0;
    else if (p.dim() >= 2)
      std = 1.0 / std::sqrt(static_cast<double>(p.numel() / p.size(0)));
    p.copy_(torch::randn(p.sizes(), gen, p.options()) * std);
  }
}

struct BatchInputs {
  torch::Tensor x, t, y;
};

BatchInputs make_inputs(const DiTConfig& c, int64_t batch, uint64_t seed) {
  auto gen = sample_generator(seed ^ 0x5EEDull, static_cast<uint64_t>(batch));
  BatchInputs in;
  in.x = sample_noise(mix_seed(seed, static_cast<uint64_t>(batch)), 0, batch,
                      {c.in_channels, c.input_size, c.input_size});
  in.t = torch::rand({batch}, gen, torch::kFloat32) * kTimestepScale;
  in.y = c.num_classes > 0 ? torch::randint(c.num_classes, {batch}, gen, torch::kLong)
                           : torch::zeros({batch}, torch::kLong);
  return in;
}

std::string ms_cell(double v) { return v >= 100 ? fmt::format("{:.1f}", v) : fmt::format("{:.2f}", v); }

// The steps of `dit-bench forward`, in the order run_forward calls them: validate the options,
// build the model, write the PyTorch side's weights, make the inputs, print the header, time
// the engine (and, with --compare-paths, its paths against each other), run the PyTorch
// baseline process, then print the report (parity, table) and write the JSON.

// What the options decide beyond themselves (validated).
struct ForwardSetup {
  bool on_gpu = false;
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device{torch::kCPU};
  double parity_tol = 1e-4;
  LinearPrecision precision = LinearPrecision::kFloat32;
  void sync() const {
    if (on_gpu) torch::cuda::synchronize();
  }
};

ForwardSetup validate_forward(const ForwardOptions& o) {
  if (o.batches.empty()) throw Error("--batch: give at least one batch size");
  for (auto b : o.batches)
    if (b <= 0) throw Error(fmt::format("--batch: sizes must be positive, got {}", b));
  if (o.protocol.warmup < 0) throw Error("--warmup must be >= 0");
  if (!(o.protocol.warmup_time >= 0)) throw Error("--warmup-time must be >= 0");
  if (o.protocol.iters < 0) throw Error("--iters must be >= 0");
  if (!(o.protocol.min_time >= 0)) throw Error("--min-time must be >= 0");
  if (o.protocol.min_iters < 1) throw Error("--min-iters must be >= 1");
  if (!o.no_pytorch && !fs::exists(o.pytorch_script))
    throw Error(fmt::format("PyTorch script {} not found (set --pytorch-script)", o.pytorch_script));
  ForwardSetup s;
  s.on_gpu = o.device == "cuda";
  if (o.device != "cpu" && !s.on_gpu)
    throw Error(fmt::format("--device must be cpu or cuda, got '{}'", o.device));
  const std::map<std::string, torch::ScalarType> dtypes = {
      {"f32", torch::kFloat32}, {"bf16", torch::kBFloat16}, {"fp16", torch::kFloat16}};
  if (!dtypes.count(o.dtype))
    throw Error(fmt::format("--dtype must be f32, bf16 or fp16, got '{}'", o.dtype));
  s.dtype = dtypes.at(o.dtype);
  if (!s.on_gpu && s.dtype != torch::kFloat32)
    throw Error("--dtype bf16 / fp16 needs --device cuda (the CPU's bf16 linears: --compare-paths)");
  if (s.on_gpu && !torch::cuda::is_available())
    throw Error(fmt::format("--device cuda: libtorch {} sees no GPU (a CPU-only torch, or no "
                            "device visible)",
                            libtorch_version()));
  if (o.cuda_graph && !(s.on_gpu && CudaGraphForward::supported()))
    throw Error("--cuda-graph needs --device cuda and a build against a CUDA torch");
  if (s.on_gpu && o.compare_paths) throw Error("--compare-paths compares the CPU paths");
  s.precision = parse_linear_precision(o.precision, "--precision");
  if (s.on_gpu && s.precision != LinearPrecision::kFloat32)
    throw Error("--precision bf16 is the CPU inference path's option (on a GPU: --dtype bf16)");
  if (s.precision != LinearPrecision::kFloat32 && o.module_forward)
    throw Error("--precision bf16 applies to the sampling path, not --module-forward");
  s.parity_tol = o.parity_tol.value_or(
      s.dtype == torch::kFloat32 && s.precision == LinearPrecision::kFloat32 ? 1e-4 : 5e-2);
  s.device = s.on_gpu ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  return s;
}

struct BenchModel {
  DiT model{nullptr};
  std::string description;  // for the header and the JSON
  int64_t parameters = 0;
};

// A preset with random weights, or a file; float32 on the CPU, in eval mode.
BenchModel build_model(const ForwardOptions& o) {
  BenchModel m;
  if (!o.model.empty()) {
    if (o.input_size || o.channels)
      throw Error("--input-size and --channels apply to --config presets, not to --model");
    m.model = load_dit(o.model, torch::kFloat32);
    m.description = fmt::format("{} (weights from {})", m.model->config().describe(), o.model);
  } else {
    DiTConfig config = DiTConfig::preset(o.config);
    if (o.input_size) config.input_size = *o.input_size;
    if (o.channels) config.in_channels = *o.channels;
    config.validate();
    m.model = DiT(config);
    randomize_parameters(*m.model, o.seed);
    std::string name = o.config.rfind("DiT-", 0) == 0 || o.config == "tiny" || o.config == "fmnist"
                           ? o.config
                           : "DiT-" + o.config;
    m.description = fmt::format("{}: {} (random weights, seed {})", name, config.describe(), o.seed);
  }
  m.model->eval();
  for (const auto& p : m.model->parameters()) m.parameters += p.numel();
  return m;
}

struct ForwardInputs {
  std::vector<BatchInputs> cpu;     // float32 on the CPU (saved for the PyTorch side)
  std::vector<BatchInputs> engine;  // the same on the engine's device, x in its dtype
  size_t parity_i = 0;              // the smallest batch: the one compared with PyTorch
  int64_t parity_batch = 0;
};

ForwardInputs make_forward_inputs(const ForwardOptions& o, const ForwardSetup& s, const DiTConfig& cfg) {
  ForwardInputs in;
  for (auto b : o.batches) in.cpu.push_back(make_inputs(cfg, b, o.seed));
  for (const auto& c : in.cpu)
    in.engine.push_back({c.x.to(s.device, s.dtype), c.t.to(s.device), c.y.to(s.device)});
  in.parity_i = static_cast<size_t>(std::min_element(o.batches.begin(), o.batches.end()) -
                                    o.batches.begin());
  in.parity_batch = o.batches[in.parity_i];
  return in;
}

void print_forward_header(const ForwardOptions& o, const Machine& mach, int threads,
                          double load_before, const BenchModel& m,
                          const std::string& attention_backend) {
  fmt::print("dit-bench forward\n");
  fmt::print("command:   {}\n", g_command_line);
  fmt::print("machine:   {}; load average {:.2f} at start\n", mach.line(), load_before);
  fmt::print("cpu flags: {}\n", cpu_flags_line());
  fmt::print("threads:   {} (engine and pytorch intra-op; the PyTorch process also gets "
             "OMP_NUM_THREADS={})\n", threads, threads);
  if (load_before >= 0.5 && load_before + threads > mach.cores + 0.25)
    fmt::print("warning:   load average {:.2f} on {} cores: other processes compete for the CPU, "
               "timings will be noisy and threads that wait on each other can stall (try fewer "
               "--threads)\n",
               load_before, mach.cores);
  fmt::print("dtype:     {}, device {}, inference mode, eval\n", o.dtype, o.device);
  fmt::print("model:     {}, {:.2f} M parameters\n", m.description, m.parameters / 1e6);
  fmt::print("engine:    dit-engine on libtorch {}, attention backend '{}', {}\n",
             libtorch_version(), attention_backend,
             o.module_forward ? "DiT::forward (--module-forward)"
                              : fmt::format("the sampling path (DiTInference: reused buffers, "
                                            "in-place residuals), {} linears{}",
                                            o.precision,
                                            kernels::PackedLinear::available() ? " (oneDNN, prepacked)"
                                                                      : " (torch::linear)"));
  fmt::print("protocol:  {}\n", o.protocol.describe());
  std::fflush(stdout);
}

// --compare-paths: the engine's own paths against each other, in interleaved rounds (called
// under the NoGradGuard / InferenceMode of time_engine).
void compare_engine_paths(const ForwardOptions& o, DiT& model, DiTInference& inference_path,
                          const std::vector<BatchInputs>& inputs) {
  fmt::print("\nengine paths (interleaved rounds; ratio = reference ms / that ms):\n");
  fmt::print("{:>6}  {:>12}  {:>12}  {:>14}  {:>13}  {:>7}  {:>7}  {:>7}  {:>12}\n", "batch",
             "reference ms", "cpu fwd ms", "cpu infer ms", "infer bf16 ms", "fwd x",
             "infer x", "bf16 x", "bf16 rel err");
  DiTInference bf16_path(model, LinearPrecision::kBF16);
  for (size_t i = 0; i < o.batches.size(); ++i) {
    const auto& in = inputs[i];
    const auto ts = time_interleaved(
        {[&] {
           kernels::ScopedBackend ref("reference");
           (void)model->forward(in.x, in.t, in.y);
         },
         [&] { (void)model->forward(in.x, in.t, in.y); },
         [&] { (void)inference_path.forward(in.x, in.t, in.y); },
         [&] { (void)bf16_path.forward(in.x, in.t, in.y); }},
        o.protocol);
    auto full = model->forward(in.x, in.t, in.y);
    const double bf16_err = (bf16_path.forward(in.x, in.t, in.y) - full).abs().max().item<double>() /
                            full.abs().max().item<double>();
    fmt::print("{:>6}  {:>12}  {:>12}  {:>14}  {:>13}  {:>6.2f}x  {:>6.2f}x  {:>6.2f}x  {:>12.1e}\n",
               o.batches[i], ms_cell(ts[0].median_ms), ms_cell(ts[1].median_ms),
               ms_cell(ts[2].median_ms), ms_cell(ts[3].median_ms),
               ts[0].median_ms / ts[1].median_ms, ts[0].median_ms / ts[2].median_ms,
               ts[0].median_ms / ts[3].median_ms, bf16_err);
    std::fflush(stdout);
  }
  fmt::print("bf16 rel err = max |bf16 - fp32 output| / max |fp32 output|\n");
  fmt::print("\n");
}

struct EngineResults {
  std::vector<Timing> engine, graph;  // per batch size; graph with --cuda-graph
  torch::Tensor parity_out;           // the parity batch's output, float32 on the CPU
  std::optional<double> graph_diff;   // max |graph replay - engine| over the batch sizes
};

// Engine: one output kept for the parity check, then the timings.
EngineResults time_engine(const ForwardOptions& o, const ForwardSetup& s, DiT& model,
                          const ForwardInputs& inputs) {
  EngineResults r;
  torch::NoGradGuard no_grad;
  c10::InferenceMode inference;
  DiTInference inference_path(model, s.precision);
  auto run = [&](const BatchInputs& in) {
    return o.module_forward ? model->forward(in.x, in.t, in.y) : inference_path.forward(in.x, in.t, in.y);
  };
  r.parity_out = run(inputs.engine[inputs.parity_i]).to(torch::kCPU, torch::kFloat32).clone();
  for (size_t i = 0; i < o.batches.size(); ++i) {
    const auto& in = inputs.engine[i];
    r.engine.push_back(time_runs(
        [&] {
          (void)run(in);
          s.sync();
        },
        o.protocol));
    fmt::print(stderr, "engine batch {}: {} iters, median {:.2f} ms\n", o.batches[i],
               r.engine.back().samples_ms.size(), r.engine.back().median_ms);
    if (o.cuda_graph) {
      CudaGraphForward replay(inference_path, in.x, in.t, in.y);
      const double diff = (replay.forward(in.x, in.t, in.y) - run(in))
                              .abs()
                              .max()
                              .to(torch::kCPU, torch::kFloat64)
                              .item<double>();
      r.graph_diff = std::max(r.graph_diff.value_or(0.0), diff);
      r.graph.push_back(time_runs(
          [&] {
            (void)replay.forward(in.x, in.t, in.y);
            s.sync();
          },
          o.protocol));
      fmt::print(stderr, "engine graph batch {}: {} iters, median {:.2f} ms\n", o.batches[i],
                 r.graph.back().samples_ms.size(), r.graph.back().median_ms);
    }
  }
  if (o.compare_paths) compare_engine_paths(o, model, inference_path, inputs.cpu);
  return r;
}

// PyTorch on the same weights and inputs (apps/bench/pytorch_forward.py in its own process):
// its JSON output, checked for shape.
json run_pytorch_baseline(const ForwardOptions& o, const TempDir& tmp, const std::string& weights_path,
                          const ForwardInputs& inputs, const torch::Tensor& engine_out, int threads) {
  const std::string inputs_path = tmp.path() + "/inputs.safetensors";
  TensorMap in_map;
  for (size_t i = 0; i < o.batches.size(); ++i) {
    const auto b = std::to_string(o.batches[i]);
    in_map["x." + b] = inputs.cpu[i].x;
    in_map["t." + b] = inputs.cpu[i].t;
    in_map["y." + b] = inputs.cpu[i].y;
  }
  in_map["engine_out"] = engine_out;
  save_safetensors(inputs_path, in_map, {{"parity_batch", std::to_string(inputs.parity_batch)}});

  std::string batch_list;
  for (auto b : o.batches) batch_list += (batch_list.empty() ? "" : ",") + std::to_string(b);
  std::vector<std::string> argv = {o.python, o.pytorch_script,
                                   "--weights", weights_path,
                                   "--inputs", inputs_path,
                                   "--parity-batch", std::to_string(inputs.parity_batch),
                                   "--batch", batch_list,
                                   "--threads", std::to_string(threads),
                                   "--warmup", std::to_string(o.protocol.warmup),
                                   "--warmup-time", fmt::format("{}", o.protocol.warmup_time),
                                   "--iters", std::to_string(o.protocol.iters),
                                   "--min-time", fmt::format("{}", o.protocol.min_time),
                                   "--min-iters", std::to_string(o.protocol.min_iters),
                                   "--device", o.device,
                                   "--dtype", o.dtype};
  if (o.compile) argv.push_back("--compile");
  std::string out = run_capture(argv, baseline_env(threads));
  json py;
  try {
    py = json::parse(out);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: output is not JSON ({}): {:.200}", o.pytorch_script, e.what(), out));
  }
  if (!py.contains("results") || py["results"].size() != o.batches.size() ||
      !py.contains("parity") ||
      (o.compile && (!py.contains("compiled") || py["compiled"].size() != o.batches.size())))
    throw Error(fmt::format("{}: unexpected output: {:.200}", o.pytorch_script, out));
  if (py["threads"].get<int>() != threads)
    throw Error(fmt::format("pytorch ran with {} threads, engine with {}",
                            py["threads"].get<int>(), threads));
  if (o.cross_check && !o.compile) {
    // The same baseline again in a fresh process: its medians must agree with the first within
    // noise, else the baseline was not in its steady state (or the machine is too busy to
    // measure) and the table says so. The ratios use the faster of the two processes.
    fmt::print(stderr, "pytorch cross-check: a second, separate process on the same weights\n");
    json again;
    try {
      again = json::parse(run_capture(argv, baseline_env(threads)));
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: cross-check output is not JSON ({})", o.pytorch_script, e.what()));
    }
    if (!again.contains("results") || again["results"].size() != o.batches.size())
      throw Error(fmt::format("{}: unexpected cross-check output", o.pytorch_script));
    py["cross_check"] = again["results"];
  }
  if (o.keep_temp) fmt::print(stderr, "kept {}\n", tmp.path());
  return py;
}

// Median of the faster PyTorch process for row i (the first, or the cross-check), and whether
// the two agree: within 10%, or their [min..max] ranges overlap.
struct Baseline {
  double median_ms = 0, other_ms = 0;
  bool checked = false, agree = true;
  json chosen;
};

Baseline pick_baseline(const json& py, size_t i) {
  Baseline b;
  const auto& first = py["results"][i];
  b.median_ms = first["median_ms"].get<double>();
  b.chosen = first;
  if (!py.contains("cross_check")) return b;
  const auto& second = py["cross_check"][i];
  const double m2 = second["median_ms"].get<double>();
  b.checked = true;
  const bool overlap = second["min_ms"].get<double>() <= first["max_ms"].get<double>() &&
                       first["min_ms"].get<double>() <= second["max_ms"].get<double>();
  b.agree = overlap || std::abs(m2 - b.median_ms) <= 0.1 * std::min(m2, b.median_ms);
  b.other_ms = b.median_ms;
  if (m2 < b.median_ms) {
    b.other_ms = b.median_ms, b.median_ms = m2, b.chosen = second;
  } else {
    b.other_ms = m2;
  }
  return b;
}

// The lines above the table: the PyTorch side, the graph replay, the parity. Returns
// max |engine - pytorch| when PyTorch ran.
std::optional<double> print_forward_notes(const ForwardOptions& o, const json& py,
                                          const EngineResults& r, int64_t parity_batch) {
  if (!py.is_null())
    fmt::print("pytorch:   torch {} (python {}, {}) on {}, attention {}, reference DiT module "
               "structure; eager{}\n",
               py["torch_version"].get<std::string>(), py["python"].get<std::string>(), o.python,
               py.value("device_name", std::string("cpu")),
               py.value("attention", std::string("explicit softmax")),
               o.compile ? " and torch.compile (default mode)" : "");
  if (r.graph_diff)
    fmt::print("graph:     engine forward replayed as one CUDA graph (CudaGraphForward); max "
               "|graph - engine| = {:.3g}\n",
               *r.graph_diff);
  std::optional<double> parity_diff;
  if (!py.is_null()) {
    const auto& par = py["parity"];
    parity_diff = par["max_abs_diff"].get<double>();
    fmt::print("parity:    batch {}: max |engine - pytorch| = {:.3g} (mean {:.3g}; output max |y| "
               "{:.3g}, rms {:.3g})\n",
               parity_batch, *parity_diff, par["mean_abs_diff"].get<double>(),
               par["max_abs_output"].get<double>(), par["rms_output"].get<double>());
  }
  return parity_diff;
}

// The table: engine, [graph], pytorch eager, [compiled], then the ratios of the engine's best
// path (graph when timed) against each PyTorch side. Returns its rows as JSON.
json print_forward_table(const ForwardOptions& o, const json& py, const EngineResults& r) {
  const bool have_py = !py.is_null();
  const bool checked = have_py && py.contains("cross_check");
  std::string head = fmt::format("\n{:>6}  {:>26}  {:>9}", "batch", "engine ms [min..max]", "img/s");
  if (o.cuda_graph) head += fmt::format("  {:>9}", "graph ms");
  if (have_py) head += fmt::format("  {:>26}  {:>9}", "pytorch ms [min..max]", "img/s");
  if (checked) head += fmt::format("  {:>10}", "2nd proc");
  if (have_py && o.compile) head += fmt::format("  {:>11}", "compiled ms");
  if (have_py) head += fmt::format("  {:>6}", "ratio");
  if (have_py && o.compile) head += fmt::format("  {:>11}", "vs compiled");
  fmt::print("{}\n", head);
  json rows = json::array();
  bool disagree = false;
  for (size_t i = 0; i < o.batches.size(); ++i) {
    const int64_t b = o.batches[i];
    const Timing& e = r.engine[i];
    const double best_ms = o.cuda_graph ? std::min(e.median_ms, r.graph[i].median_ms) : e.median_ms;
    json row = {{"batch", b}, {"engine", timing_json(e, b)}};
    std::string line = fmt::format("{:>6}  {:>26}  {:>9.1f}", b, spread(e), b * 1e3 / e.median_ms);
    if (o.cuda_graph) {
      row["graph"] = timing_json(r.graph[i], b);
      line += fmt::format("  {:>9}", ms_cell(r.graph[i].median_ms));
    }
    if (have_py) {
      const auto& pr = py["results"][i];
      if (pr["batch"].get<int64_t>() != b)
        throw Error(fmt::format("pytorch results out of order: batch {} vs {}",
                                pr["batch"].get<int64_t>(), b));
      const Baseline base = pick_baseline(py, i);
      const double pms = base.median_ms;
      row["pytorch"] = pr;
      if (checked) {
        row["pytorch_cross_check"] = py["cross_check"][i];
        row["baseline_agree"] = base.agree;
        disagree |= !base.agree;
      }
      row["baseline_ms"] = pms;
      row["ratio"] = pms / best_ms;  // engine speed / pytorch speed
      const std::string prange = fmt::format("{} [{}..{}]", ms_cell(pms),
                                             ms_cell(base.chosen["min_ms"].get<double>()),
                                             ms_cell(base.chosen["max_ms"].get<double>()));
      line += fmt::format("  {:>26}  {:>9.1f}", prange, b * 1e3 / pms);
      if (checked) line += fmt::format("  {:>10}", ms_cell(base.other_ms) + (base.agree ? "" : "!"));
      std::string vs_compiled;
      if (o.compile) {
        const auto& c = py["compiled"][i];
        const double cms = c["median_ms"].get<double>();
        row["compiled"] = c;
        row["ratio_compiled"] = cms / best_ms;
        line += fmt::format("  {:>11}", ms_cell(cms));
        vs_compiled = fmt::format("  {:>11.2f}", cms / best_ms);
      }
      line += fmt::format("  {:>6.2f}", pms / best_ms) + vs_compiled;
    }
    fmt::print("{}\n", line);
    rows.push_back(row);
  }
  if (have_py)
    fmt::print("ratio = engine img/s / pytorch eager img/s{} (> 1: engine faster; the engine's "
               "{}); medians{}\n",
               o.compile ? ", vs compiled = the same against torch.compile" : "",
               o.cuda_graph ? "faster of forward and graph replay" : "forward",
               checked ? "; pytorch = the faster of two separate processes (2nd proc = the other)"
                       : "");
  if (disagree)
    fmt::print("warning:   the two PyTorch processes disagree (marked !): the machine is noisy "
               "or the baseline not steady; do not quote these ratios\n");
  return rows;
}

void write_forward_json(const ForwardOptions& o, const ForwardSetup& s, const Machine& mach,
                        double load_before, int threads, const BenchModel& m,
                        const std::string& attention_backend, const json& rows, const json& py,
                        bool parity_ok) {
  json doc = {
      {"benchmark", "forward"},
      {"command", g_command_line},
      {"machine",
       {{"cpu", mach.cpu}, {"cores", mach.cores}, {"load_average_start", load_before},
        {"load_average_end", load_average()}}},
      {"threads", threads},
      {"dtype", o.dtype},
      {"device", o.device},
      {"model", m.description},
      {"config", m.model->config().to_metadata()},
      {"parameters", m.parameters},
      {"engine",
       {{"libtorch", libtorch_version()},
        {"attention_backend", attention_backend},
        {"path", o.module_forward ? "DiT::forward" : "DiTInference"},
        {"precision", o.precision}}},
      {"protocol",
       {{"warmup", o.protocol.warmup},
        {"warmup_time_s", o.protocol.warmup_time},
        {"iters", o.protocol.iters},
        {"min_time_s", o.protocol.min_time},
        {"min_iters", o.protocol.min_iters},
        {"statistic", "median"}}},
      {"results", rows},
  };
  if (!py.is_null()) {
    doc["pytorch"] = {{"torch", py["torch_version"]}, {"python", py["python"]},
                      {"executable", o.python}, {"script", o.pytorch_script}};
    doc["parity"] = py["parity"];
    doc["parity"]["tolerance"] = s.parity_tol;
    doc["parity"]["ok"] = parity_ok;
  }
  write_file_atomic(o.json_out, doc.dump(2) + "\n");
  fmt::print("wrote {}\n", o.json_out);
}

void run_forward(const ForwardOptions& o) {
  const ForwardSetup setup = validate_forward(o);
  BenchModel m = build_model(o);
  const DiTConfig& cfg = m.model->config();

  // The PyTorch side reads the float32 weights; written before the model moves.
  std::optional<TempDir> tmp;
  std::string weights_path;
  if (!o.no_pytorch) {
    tmp.emplace("dit-bench");
    if (o.keep_temp) tmp->keep();
    weights_path = tmp->path() + "/weights.safetensors";
    save_dit(weights_path, m.model, torch::kFloat32, {{"format", "dit-bench weights"}});
  }
  if (setup.on_gpu) m.model->to(setup.device, setup.dtype);

  const int threads = set_threads(o.threads);
  const Machine mach = machine();
  kernels::ScopedBackend kernel_choice(o.kernels);
  const std::string attention_backend = kernels::attention_backend(
      torch::zeros({1, cfg.num_heads, cfg.num_patches(), cfg.head_dim()},
                   torch::TensorOptions(setup.device).dtype(setup.dtype)));
  const ForwardInputs inputs = make_forward_inputs(o, setup, cfg);
  const double load_before = load_average();
  print_forward_header(o, mach, threads, load_before, m, attention_backend);

  const EngineResults engine = time_engine(o, setup, m.model, inputs);
  json py;
  if (!o.no_pytorch) py = run_pytorch_baseline(o, *tmp, weights_path, inputs, engine.parity_out, threads);

  const std::optional<double> parity_diff = print_forward_notes(o, py, engine, inputs.parity_batch);
  const json rows = print_forward_table(o, py, engine);
  const bool parity_ok =
      !parity_diff ||
      *parity_diff <= setup.parity_tol * std::max(1.0, py["parity"]["max_abs_output"].get<double>());
  if (!o.json_out.empty())
    write_forward_json(o, setup, mach, load_before, threads, m, attention_backend, rows, py, parity_ok);
  if (!parity_ok)
    throw Error(fmt::format("parity check failed: max |engine - pytorch| = {:.3g} exceeds {:.3g} "
                            "(scaled by max |y|): the two sides do not compute the same function",
                            *parity_diff, setup.parity_tol));
}

void add_forward(CLI::App& app) {
  auto o = std::make_shared<ForwardOptions>();
  auto* cmd = app.add_subcommand(
      "forward", "DiT forward pass: engine vs PyTorch (eager; --compile: also torch.compile) on "
                 "the same weights and inputs, on the CPU or a GPU (--device cuda)");
  cmd->add_option("--config", o->config, "DiT preset (S/2, B/4, XL/2, ..., tiny, fmnist)")
      ->capture_default_str();
  cmd->add_option("--batch", o->batches, "Batch sizes, comma separated")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Intra-op threads for both sides (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--warmup", o->protocol.warmup, "Untimed runs per batch size (at least)")
      ->capture_default_str();
  auto* iters = cmd->add_option("--iters", o->protocol.iters,
                                "Timed runs per batch size (default: run until --min-time)");
  cmd->add_option("--min-time", o->protocol.min_time,
                  "Seconds of timed runs per batch size (when --iters is not given)")
      ->capture_default_str()
      ->excludes(iters);
  cmd->add_option("--min-iters", o->protocol.min_iters, "At least this many timed runs with --min-time")
      ->capture_default_str();
  cmd->add_option("--model", o->model, "Weights (.safetensors model or checkpoint) instead of a "
                                       "random preset");
  cmd->add_option("--input-size", o->input_size, "Override the preset's input size (latent side)");
  cmd->add_option("--channels", o->channels, "Override the preset's input channels");
  cmd->add_flag("--no-pytorch", o->no_pytorch, "Time the engine only");
  cmd->add_option("--pytorch-script", o->pytorch_script, "PyTorch baseline script")
      ->capture_default_str();
  cmd->add_option("--python", o->python, "Python interpreter with torch")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random weights and inputs")->capture_default_str();
  cmd->add_option("--parity-tol", o->parity_tol,
                  "Max |engine - pytorch| allowed (times max(1, max |output|); default 1e-4 in "
                  "f32, 5e-2 in bf16 / fp16)");
  cmd->add_option("--device", o->device, "cpu or cuda (both sides run there)")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "f32, or bf16 / fp16 with --device cuda (weights and "
                                       "activations, both sides)")
      ->capture_default_str();
  cmd->add_flag("--cuda-graph", o->cuda_graph,
                "Also time the engine's forward replayed as one CUDA graph (CudaGraphForward)");
  cmd->add_flag("--compile", o->compile, "Also time torch.compile(model) on the PyTorch side");
  cmd->add_option("--json", o->json_out, "Write the results as JSON");
  cmd->add_flag("--keep-temp", o->keep_temp, "Keep the temporary weights and inputs");
  cmd->add_flag("--compare-paths", o->compare_paths,
                "Also time the engine's paths against each other in interleaved rounds: reference "
                "kernels, cpu kernels (DiT::forward), cpu kernels + DiTInference");
  cmd->add_flag_function("--inference", [](int64_t) {},
                "(the default; kept for old command lines) Time the sampling path");
  cmd->add_flag("--module-forward", o->module_forward,
                "Time DiT::forward (the training module) instead of the sampling path");
  cmd->add_option("--precision", o->precision,
                  "The engine's linear layers on the CPU: fp32 or bf16 (the PyTorch baseline "
                  "stays fp32 eager)")
      ->capture_default_str();
  cmd->add_option("--warmup-time", o->protocol.warmup_time,
                  "Seconds of untimed runs per batch size (at least; and --warmup runs)")
      ->capture_default_str();
  cmd->add_flag("!--no-cross-check", o->cross_check,
                "Skip the second, separate PyTorch process that checks the baseline");
  cmd->add_option("--kernels", o->kernels,
                  "Engine kernel backend: auto, reference, cpu, cpu:avx512, cpu:avx2, cpu:scalar, "
                  "cuda")
      ->capture_default_str();
  cmd->callback([o] { run_forward(*o); });
}


// ---- attention / adaln ------------------------------------------------------------------------

struct KernelBenchOptions {
  std::vector<std::string> shapes;
  int threads = 0;
  Protocol protocol;
  double mask_fraction = 0;  // attention: fraction of keys masked (0: no mask)
  bool all_isas = false;
  std::string json_out;
};

std::vector<int64_t> parse_dims(const std::string& s, size_t n, const char* what) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    const std::string part = s.substr(pos, comma - pos);
    try {
      size_t used = 0;
      const long long v = std::stoll(part, &used);
      if (used != part.size() || v <= 0) throw std::invalid_argument(part);
      out.push_back(v);
    } catch (const std::exception&) {
      throw Error(fmt::format("--shape '{}': expected {} positive integers {}", s, n, what));
    }
    pos = comma + 1;
  }
  if (out.size() != n) throw Error(fmt::format("--shape '{}': expected {} numbers {}", s, n, what));
  return out;
}

void print_kernel_header(const char* name, int threads, const Protocol& p) {
  const Machine mach = machine();
  fmt::print("dit-bench {}\n", name);
  fmt::print("command:   {}\n", g_command_line);
  const double load = load_average();
  fmt::print("machine:   {}; load average {:.2f} at start\n", mach.line(), load);
  fmt::print("cpu isas:  {} (best: {})\n", fmt::join(kernels::cpu::isas(), ", "),
             kernels::cpu::best_isa());
  fmt::print("threads:   {} (all sides, libtorch intra-op)\n", threads);
  if (load >= 0.5 && load + threads > mach.cores + 0.25)
    fmt::print("warning:   load average {:.2f} on {} cores: timings are taken under load\n", load,
               mach.cores);
  fmt::print("libtorch:  {}\n", libtorch_version());
  fmt::print("protocol:  {}\n", p.describe());
}

// An attention shape "B,H,N,D" and its inputs: q, k, v [B, H, N, D] ~ N(0, 1), seeded by the shape.
std::array<int64_t, 4> attention_shape(const std::string& s) {
  const auto d = parse_dims(s, 4, "B,H,N,D");
  return {d[0], d[1], d[2], d[3]};
}

std::array<torch::Tensor, 3> random_qkv(int64_t B, int64_t H, int64_t N, int64_t D) {
  auto gen = sample_generator(0, static_cast<uint64_t>(B * 1000003 + H * 1009 + N * 31 + D));
  auto q = torch::randn({B, H, N, D}, gen, torch::kFloat32);
  auto k = torch::randn({B, H, N, D}, gen, torch::kFloat32);
  auto v = torch::randn({B, H, N, D}, gen, torch::kFloat32);
  return {q, k, v};
}

torch::Tensor libtorch_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const std::optional<torch::Tensor>& bool_mask) {
  c10::optional<torch::Tensor> mask;
  if (bool_mask) mask = *bool_mask;
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask));
#endif
}

void run_attention(const KernelBenchOptions& o) {
  std::vector<std::string> shapes = o.shapes;
  if (shapes.empty())
    shapes = {"8,6,256,64", "4,16,256,72", "2,6,1024,64", "1,16,1024,72", "16,6,64,64"};
  if (!(o.mask_fraction >= 0 && o.mask_fraction < 1))
    throw Error("--mask-fraction must be in [0, 1)");
  const int threads = set_threads(o.threads);
  print_kernel_header("attention", threads, o.protocol);
  fmt::print("dtype:     f32, q k v [B, H, N, Dh] contiguous, Nq = Nk = N, inference mode{}\n",
             o.mask_fraction > 0
                 ? fmt::format(", key mask with the last {:.0f}% of keys padded", 100 * o.mask_fraction)
                 : std::string());
#if TORCH_VERSION_MAJOR >= 2
  const char* sdpa_name = "at::scaled_dot_product_attention";
#else
  const char* sdpa_name = "at::_scaled_dot_product_attention";
#endif
  fmt::print("baselines: sdpa = {} (libtorch math path: matmul, softmax, matmul); "
             "reference = kernels::reference::attention\n\n",
             sdpa_name);
  std::vector<std::string> isas = kernels::cpu::isas();
  if (!o.all_isas) {
    std::vector<std::string> keep = {isas.front()};
    if (isas.front() != "avx2" &&
        std::find(isas.begin(), isas.end(), "avx2") != isas.end())
      keep.push_back("avx2");
    isas = keep;
  }
  std::string head = fmt::format("{:>16}", "B,H,N,D");
  for (const auto& isa : isas) head += fmt::format("  {:>11}", "cpu:" + isa + " ms");
  head += fmt::format("  {:>8}  {:>8}  {:>7}  {:>9}  {:>9}  {:>8}", "sdpa ms", "ref ms", "GFLOP/s",
                      "vs sdpa", "vs ref", "max diff");
  fmt::print("{}\n", head);
  json rows = json::array();
  c10::InferenceMode inference;
  for (const auto& sh : shapes) {
    const auto dims = attention_shape(sh);
    const int64_t B = dims[0], H = dims[1], N = dims[2], D = dims[3];
    const auto qkv = random_qkv(B, H, N, D);
    const torch::Tensor &q = qkv[0], &k = qkv[1], &v = qkv[2];
    kernels::AttentionOptions opts;
    std::optional<torch::Tensor> sdpa_mask;
    if (o.mask_fraction > 0) {
      const int64_t keep = std::max<int64_t>(1, N - static_cast<int64_t>(o.mask_fraction * N));
      auto m = torch::zeros({B, N}, torch::kBool);
      m.narrow(1, 0, keep).fill_(true);
      opts.key_mask = m;
      sdpa_mask = m.view({B, 1, 1, N});
    }
    std::vector<std::function<void()>> fns;
    for (const auto& isa : isas)
      fns.push_back([&, isa] { (void)kernels::cpu::attention(q, k, v, opts, isa); });
    fns.push_back([&] { (void)libtorch_sdpa(q, k, v, sdpa_mask); });
    fns.push_back([&] { (void)kernels::reference::attention(q, k, v, opts); });
    auto timings = time_interleaved(fns, o.protocol);
    const Timing ref = timings.back();
    timings.pop_back();
    const Timing sdpa = timings.back();
    timings.pop_back();
    const std::vector<Timing> fast = timings;
    const double diff = (kernels::cpu::attention(q, k, v, opts, isas.front()) -
                         libtorch_sdpa(q, k, v, sdpa_mask))
                            .abs()
                            .max()
                            .item<double>();
    const double flops = 4.0 * B * H * N * N * D;
    const double best = fast.front().median_ms;
    std::string line = fmt::format("{:>16}", sh);
    json row = {{"shape", {B, H, N, D}}, {"flops", flops}, {"max_abs_diff_vs_sdpa", diff}};
    for (size_t i = 0; i < isas.size(); ++i) {
      line += fmt::format("  {:>11}", ms_cell(fast[i].median_ms));
      row["cpu:" + isas[i]] = timing_json(fast[i], 1);
    }
    line += fmt::format("  {:>8}  {:>8}  {:>7.1f}  {:>8.2f}x  {:>8.2f}x  {:>8.1e}",
                        ms_cell(sdpa.median_ms), ms_cell(ref.median_ms), flops / best / 1e6,
                        sdpa.median_ms / best, ref.median_ms / best, diff);
    fmt::print("{}\n", line);
    std::fflush(stdout);
    row["sdpa"] = timing_json(sdpa, 1);
    row["reference"] = timing_json(ref, 1);
    row["speedup_vs_sdpa"] = sdpa.median_ms / best;
    row["speedup_vs_reference"] = ref.median_ms / best;
    rows.push_back(row);
  }
  fmt::print("vs sdpa / vs ref = baseline ms / cpu:{} ms (> 1: fused kernel faster); GFLOP/s of "
             "cpu:{} at 4 B H N^2 D flops; medians\n",
             isas.front(), isas.front());
  fmt::print("load average {:.2f} at end\n", load_average());
  if (!o.json_out.empty()) {
    const Machine mach = machine();
    json doc = {{"benchmark", "attention"}, {"command", g_command_line},
                {"machine", {{"cpu", mach.cpu}, {"cores", mach.cores}}},
                {"threads", threads}, {"isas", isas}, {"dtype", "f32"},
                {"mask_fraction", o.mask_fraction}, {"results", rows}};
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
}

void run_adaln(const KernelBenchOptions& o) {
  std::vector<std::string> shapes = o.shapes;
  if (shapes.empty()) shapes = {"1,256,384", "8,256,384", "32,256,384", "8,256,1152"};
  const int threads = set_threads(o.threads);
  print_kernel_header("adaln", threads, o.protocol);
  fmt::print("dtype:     f32, x y [B, N, D] contiguous; shift, scale, gate chunks of a [B, 6D] "
             "projection; inference mode\n");
  fmt::print("ops:       ln = LN(x)(1 + scale) + shift (eps 1e-6, no affine); gr = x + gate[:,None] "
             "* y; fused = kernels::cpu, ref = kernels::reference (libtorch ops)\n\n");
  fmt::print("{:>14}  {:>11}  {:>9}  {:>6}  {:>11}  {:>9}  {:>6}\n", "B,N,D", "ln fused ms",
             "ln ref ms", "ratio", "gr fused ms", "gr ref ms", "ratio");
  json rows = json::array();
  c10::InferenceMode inference;
  for (const auto& sh : shapes) {
    const auto d = parse_dims(sh, 3, "B,N,D");
    const int64_t B = d[0], N = d[1], D = d[2];
    auto gen = sample_generator(1, static_cast<uint64_t>(B * 1000003 + N * 31 + D));
    auto x = torch::randn({B, N, D}, gen, torch::kFloat32);
    auto y = torch::randn({B, N, D}, gen, torch::kFloat32);
    auto mod = torch::randn({B, 6 * D}, gen, torch::kFloat32).chunk(6, 1);
    const auto ts = time_interleaved(
        {[&] { (void)kernels::cpu::adaln_layernorm(x, mod[0], mod[1]); },
         [&] { (void)kernels::reference::adaln_layernorm(x, mod[0], mod[1]); },
         [&] { (void)kernels::cpu::gate_residual(x, mod[2], y); },
         [&] { (void)kernels::reference::gate_residual(x, mod[2], y); }},
        o.protocol);
    const Timing &lf = ts[0], &lr = ts[1], &gf = ts[2], &gr = ts[3];
    fmt::print("{:>14}  {:>11.3f}  {:>9.3f}  {:>5.2f}x  {:>11.3f}  {:>9.3f}  {:>5.2f}x\n", sh,
               lf.median_ms, lr.median_ms, lr.median_ms / lf.median_ms, gf.median_ms,
               gr.median_ms, gr.median_ms / gf.median_ms);
    std::fflush(stdout);
    rows.push_back({{"shape", {B, N, D}}, {"ln_fused", timing_json(lf, 1)},
                    {"ln_reference", timing_json(lr, 1)}, {"gr_fused", timing_json(gf, 1)},
                    {"gr_reference", timing_json(gr, 1)}});
  }
  fmt::print("ratio = reference ms / fused ms (> 1: fused faster); medians; load average {:.2f} at "
             "end\n",
             load_average());
  if (!o.json_out.empty()) {
    const Machine mach = machine();
    json doc = {{"benchmark", "adaln"}, {"command", g_command_line},
                {"machine", {{"cpu", mach.cpu}, {"cores", mach.cores}}},
                {"threads", threads}, {"results", rows}};
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
}

// ---- gemm ----------------------------------------------------------------------------------------

// The linear layers of a DiT block at M = batch * tokens rows: fp32 torch::linear (Debian's
// OpenBLAS) against libtorch's oneDNN paths: bf16 torch::linear (oneDNN bf16 gemm, AVX512-BF16
// where the CPU has it; weights cast once, the activation cast counted) and fp32 mkldnn_linear
// (weights prepacked once, the activation conversion counted).
void run_gemm(const KernelBenchOptions& o) {
  std::vector<std::string> shapes = o.shapes;
  if (shapes.empty())  // DiT-S/2 (hidden 384, 256 tokens) at batch 1 and 8: qkv, proj, fc1, fc2
    shapes = {"256,384,1152", "256,384,384", "256,384,1536", "256,1536,384",
              "2048,384,1152", "2048,384,384", "2048,384,1536", "2048,1536,384"};
  const int threads = set_threads(o.threads);
  print_kernel_header("gemm", threads, o.protocol);
  fmt::print("op:        y [M, N] = x [M, K] W^T + b; f32 = torch::linear fp32; bf16 = torch::linear on "
             "bf16 x (cast from f32 included) and bf16 W (cast once), output cast back to f32; "
             "mkldnn = at::mkldnn_linear, W prepacked, x to/from oneDNN layout included; mkldnn "
             "available: {}\n\n",
             at::hasMKLDNN() ? "yes" : "no");
  fmt::print("{:>16}  {:>8}  {:>8}  {:>8}  {:>9}  {:>9}  {:>9}  {:>10}\n", "M,K,N", "f32 ms",
             "bf16 ms", "dnnl ms", "f32 GF/s", "bf16 x", "dnnl x", "bf16 err");
  json rows = json::array();
  c10::InferenceMode inference;
  for (const auto& sh : shapes) {
    const auto d = parse_dims(sh, 3, "M,K,N");
    const int64_t M = d[0], K = d[1], N = d[2];
    auto gen = sample_generator(2, static_cast<uint64_t>(M * 1000003 + K * 31 + N));
    auto x = torch::randn({M, K}, gen, torch::kFloat32);
    auto w = torch::randn({N, K}, gen, torch::kFloat32) / std::sqrt(static_cast<double>(K));
    auto b = torch::randn({N}, gen, torch::kFloat32) * 0.02;
    auto wb = w.to(torch::kBFloat16), bb = b.to(torch::kBFloat16);
    std::vector<std::function<void()>> fns = {
        [&] { (void)torch::linear(x, w, b); },
        [&] { (void)torch::linear(x.to(torch::kBFloat16), wb, bb).to(torch::kFloat32); }};
    torch::Tensor wm;
    if (at::hasMKLDNN()) {
      wm = w.to_mkldnn();
      fns.push_back([&] { (void)at::mkldnn_linear(x.to_mkldnn(), wm, b).to_dense(); });
    }
    const auto ts = time_interleaved(fns, o.protocol);
    auto ref = torch::linear(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64));
    const double scale = ref.abs().max().item<double>();
    const double bf_err =
        (torch::linear(x.to(torch::kBFloat16), wb, bb).to(torch::kFloat64) - ref).abs().max().item<double>() /
        scale;
    const double flops = 2.0 * M * K * N;
    const double dn = ts.size() > 2 ? ts[2].median_ms : NAN;
    fmt::print("{:>16}  {:>8.3f}  {:>8.3f}  {:>8.3f}  {:>9.1f}  {:>8.2f}x  {:>8.2f}x  {:>10.1e}\n", sh,
               ts[0].median_ms, ts[1].median_ms, dn, flops / ts[0].median_ms / 1e6,
               ts[0].median_ms / ts[1].median_ms, ts[0].median_ms / dn, bf_err);
    std::fflush(stdout);
    json row = {{"shape", {M, K, N}}, {"flops", flops}, {"f32", timing_json(ts[0], 1)},
                {"bf16", timing_json(ts[1], 1)}, {"bf16_max_rel_err", bf_err}};
    if (ts.size() > 2) row["mkldnn_f32"] = timing_json(ts[2], 1);
    rows.push_back(row);
  }
  fmt::print("bf16 x / dnnl x = f32 ms / that ms (> 1: faster than fp32 OpenBLAS); bf16 err = max "
             "|y_bf16 - y_f64| / max |y_f64|; medians; load average {:.2f} at end\n",
             load_average());
  if (!o.json_out.empty()) {
    const Machine mach = machine();
    json doc = {{"benchmark", "gemm"}, {"command", g_command_line},
                {"machine", {{"cpu", mach.cpu}, {"cores", mach.cores}}},
                {"threads", threads}, {"results", rows}};
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
}

void add_kernel_common(CLI::App* cmd, KernelBenchOptions* o, const char* shape_help) {
  cmd->add_option("--shape", o->shapes, shape_help);
  cmd->add_option("--threads", o->threads, "Intra-op threads for every side (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--warmup", o->protocol.warmup, "Untimed runs per measurement")
      ->capture_default_str();
  auto* iters = cmd->add_option("--iters", o->protocol.iters,
                                "Timed runs per measurement (default: run until --min-time)");
  cmd->add_option("--min-time", o->protocol.min_time, "Seconds of timed runs per measurement")
      ->capture_default_str()
      ->excludes(iters);
  cmd->add_option("--json", o->json_out, "Write the results as JSON");
}

void add_attention(CLI::App& app) {
  auto o = std::make_shared<KernelBenchOptions>();
  o->protocol.min_time = 1.0;
  auto* cmd = app.add_subcommand(
      "attention", "Fused CPU attention vs libtorch scaled-dot-product attention and the reference");
  add_kernel_common(cmd, o.get(),
                    "B,H,N,D (repeatable; default the DiT shapes 8,6,256,64 4,16,256,72 "
                    "2,6,1024,64 1,16,1024,72 16,6,64,64)");
  cmd->add_option("--mask-fraction", o->mask_fraction, "Mask this fraction of the keys")
      ->capture_default_str();
  cmd->add_flag("--all-isas", o->all_isas, "Time every ISA (default: the best and avx2)");
  cmd->callback([o] { run_attention(*o); });
}

void add_adaln(CLI::App& app) {
  auto o = std::make_shared<KernelBenchOptions>();
  o->protocol.min_time = 0.5;
  auto* cmd = app.add_subcommand(
      "adaln", "Fused LayerNorm+modulate and gate+residual vs the reference libtorch ops");
  add_kernel_common(cmd, o.get(), "B,N,D (repeatable; default 1,256,384 8,256,384 32,256,384 8,256,1152)");
  cmd->callback([o] { run_adaln(*o); });
}

void add_scheduler(CLI::App& app);  // scheduler_bench.cpp
void add_protein(CLI::App& app);    // protein_bench.cpp
void add_crystal(CLI::App& app);    // crystal_bench.cpp
void add_cli(CLI::App& app);        // cli_bench.cpp
void add_vae(CLI::App& app);        // vae_bench.cpp

void add_gemm(CLI::App& app) {
  auto o = std::make_shared<KernelBenchOptions>();
  o->protocol.min_time = 0.5;
  auto* cmd = app.add_subcommand(
      "gemm", "DiT linear layers: fp32 torch::linear (OpenBLAS) vs libtorch's oneDNN bf16 and fp32");
  add_kernel_common(cmd, o.get(),
                    "M,K,N (repeatable; default DiT-S/2 qkv, proj, fc1, fc2 at batch 1 and 8)");
  cmd->callback([o] { run_gemm(*o); });
}

// ---- autotune -------------------------------------------------------------------------------

struct AutotuneOptions {
  std::vector<std::string> shapes;
  int threads = 0;
  std::string isa;
  bool keep = false;
  Protocol protocol;
  std::string json_out;
};

// Searches the cpu attention's tiles for each shape now (replacing cached answers unless
// --keep), prints every candidate, stores the winners in the autotune cache, then times the
// fixed default tiles against the tuned ones, interleaved.
void run_autotune(const AutotuneOptions& o) {
  std::vector<std::string> shapes = o.shapes;
  if (shapes.empty())
    shapes = {"8,6,256,64", "4,16,256,72", "2,6,1024,64", "1,16,1024,72", "16,6,64,64"};
  const int threads = set_threads(o.threads);
  const std::string isa = o.isa.empty() ? kernels::cpu::best_isa() : o.isa;
  print_kernel_header("autotune", threads, o.protocol);
  fmt::print("kernel:    cpu:{} attention, f32, q k v [B, H, N, Dh] contiguous, Nq = Nk = N\n", isa);
  fmt::print("cache:     {}\n\n", kernels::autotune_cache_path().empty()
                                      ? std::string("(none: no home directory)")
                                      : kernels::autotune_cache_path());
  json rows = json::array();
  c10::InferenceMode inference;
  const bool was_enabled = kernels::autotune_enabled();
  for (const auto& sh : shapes) {
    const auto dims = attention_shape(sh);
    const int64_t B = dims[0], H = dims[1], N = dims[2], D = dims[3];
    const auto qkv = random_qkv(B, H, N, D);
    const torch::Tensor &q = qkv[0], &k = qkv[1], &v = qkv[2];
    const auto reports = kernels::cpu::tune_attention(q, k, v, {}, isa, !o.keep);
    fmt::print("{}\n", sh);
    json decisions = json::array();
    for (const auto& r : reports) {
      std::string cands;
      for (const auto& c : r.candidates) cands += fmt::format("  {} {:.3f} ms", c.name, c.ms);
      fmt::print("  {:<10} -> {:<13}{}\n", r.key.substr(r.key.rfind('|') + 1), r.chosen,
                 r.candidates.empty() ? std::string("  (cached)") : cands);
      json cj = json::array();
      for (const auto& c : r.candidates) cj.push_back({{"name", c.name}, {"ms", c.ms}});
      decisions.push_back({{"key", r.key}, {"chosen", r.chosen}, {"candidates", cj}});
    }
    kernels::set_autotune(false);
    const auto fixed = kernels::cpu::attention_tiles(q, k, v, {}, isa);
    kernels::set_autotune(true);
    const auto tuned = kernels::cpu::attention_tiles(q, k, v, {}, isa);
    const auto ts = time_interleaved(
        {[&] {
           kernels::set_autotune(false);
           (void)kernels::cpu::attention(q, k, v, {}, isa);
         },
         [&] {
           kernels::set_autotune(true);
           (void)kernels::cpu::attention(q, k, v, {}, isa);
         }},
        o.protocol);
    const double ratio = ts[0].median_ms / ts[1].median_ms;
    fmt::print("  default q_tile={} key_tile={}: {:.3f} ms; tuned q_tile={} key_tile={}: {:.3f} ms; "
               "{:.2f}x\n",
               fixed.q_tile, fixed.key_tile, ts[0].median_ms, tuned.q_tile, tuned.key_tile,
               ts[1].median_ms, ratio);
    std::fflush(stdout);
    rows.push_back({{"shape", {B, H, N, D}}, {"decisions", decisions},
                    {"default", {{"q_tile", fixed.q_tile}, {"key_tile", fixed.key_tile},
                                 {"timing", timing_json(ts[0], 1)}}},
                    {"tuned", {{"q_tile", tuned.q_tile}, {"key_tile", tuned.key_tile},
                               {"timing", timing_json(ts[1], 1)}}},
                    {"speedup", ratio}});
  }
  kernels::set_autotune(was_enabled);
  fmt::print("\nspeed-up = default-tile ms / tuned-tile ms (medians, interleaved); load average "
             "{:.2f} at end\n",
             load_average());
  if (!o.json_out.empty()) {
    const Machine mach = machine();
    json doc = {{"benchmark", "autotune"}, {"command", g_command_line},
                {"machine", {{"cpu", mach.cpu}, {"cores", mach.cores}}}, {"threads", threads},
                {"isa", isa}, {"cache", kernels::autotune_cache_path()}, {"results", rows}};
    write_file_atomic(o.json_out, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", o.json_out);
  }
}

void add_autotune(CLI::App& app) {
  auto o = std::make_shared<AutotuneOptions>();
  o->protocol.min_time = 1.0;
  auto* cmd = app.add_subcommand(
      "autotune",
      "Search the kernel tile sizes now, fill the autotune cache, time tuned vs default tiles");
  cmd->add_option("--shape", o->shapes,
                  "B,H,N,D attention shapes (repeatable; default the DiT shapes of `attention`)");
  cmd->add_option("--threads", o->threads,
                  "Intra-op threads (0: all cores); tiles are tuned per thread count")
      ->capture_default_str();
  cmd->add_option("--isa", o->isa, "CPU ISA to tune (default: the best)");
  cmd->add_flag("--keep", o->keep, "Keep answers already in the cache (default: search again)");
  cmd->add_option("--min-time", o->protocol.min_time,
                  "Seconds of timed runs for the default vs tuned comparison")
      ->capture_default_str();
  cmd->add_option("--json", o->json_out, "Write the results as JSON");
  cmd->callback([o] { run_autotune(*o); });
}

}  // namespace dit::bench

int main(int argc, char** argv) {
  CLI::App app{"dit-bench: engine speed against baselines measured in the same run"};
  app.require_subcommand(1);
  dit::bench::g_command_line = dit::bench::join_argv(argc, argv);
  dit::bench::add_forward(app);
  dit::bench::add_attention(app);
  dit::bench::add_adaln(app);
  dit::bench::add_gemm(app);
  dit::bench::add_scheduler(app);
  dit::bench::add_autotune(app);
  dit::bench::add_protein(app);
  dit::bench::add_crystal(app);
  dit::bench::add_cli(app);
  dit::bench::add_vae(app);
  dit::apps::add_no_autotune_flag(app, argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help prints and succeeds; usage errors exit 1
  } catch (...) {
    return dit::apps::report_current_exception("dit-bench");
  }
  return 0;
}
