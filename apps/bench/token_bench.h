#pragma once
// What the token-DiT domain benchmarks (dit-bench protein, dit-bench crystal) share
// (token_bench.cpp): their common options, the header they print, the forward of one batch
// against the PyTorch-eager TokenDiT (apps/bench/pytorch_token_forward.py, its own process, the
// same weights, inputs and threads, parity checked on two batches before anything is timed),
// the table of sampling phases with their peak memory, and the JSON record.
#include <CLI/CLI.hpp>
#include <dit/model.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.h"

#ifndef DIT_BENCH_SCRIPT_DIR
#define DIT_BENCH_SCRIPT_DIR "apps/bench"
#endif

namespace dit::bench {

// The full sampling's protocol: one untimed run, then 3 timed repeats (each run is seconds long).
inline Protocol full_sampling_protocol() {
  Protocol p;
  p.warmup = 1, p.warmup_time = 0.0, p.iters = 3;
  return p;
}

// The options every token-DiT domain benchmark has (each adds its own: sizes, --model, --steps,
// --sampler, ...).
struct TokenBenchOptions {
  std::string model;  // empty: the domain's bundled model
  int steps = 50;
  std::string sampler = "euler";
  int threads = 0;
  uint64_t seed = 0;
  Protocol protocol;               // the forward
  Protocol sample_protocol = full_sampling_protocol();  // warmup 1, 3 timed repeats
  bool no_pytorch = false;
  std::string pytorch_script = std::string(DIT_BENCH_SCRIPT_DIR) + "/pytorch_token_forward.py";
  std::string python = "/usr/bin/python3";
  double parity_tol = 1e-4;
  std::string json_out;
  bool keep_temp = false;
};

// -t/--threads, --seed, --warmup, --iters, --min-time, --min-iters, --sample-warmup,
// --sample-repeats, --no-pytorch, --pytorch-script, --python, --parity-tol, --json, --keep-temp.
void add_token_bench_options(CLI::App* cmd, TokenBenchOptions& o);
// Throws dit::Error naming the option that is out of range (--steps and the shared ones).
void validate_token_bench(const TokenBenchOptions& o);

// One forward's inputs: the state x [B, N, Cx], times t [B] and the domain's FlowInputs.
struct ForwardBatch {
  torch::Tensor x, t;
  FlowInputs inputs;
};

// What start_token_bench set and printed.
struct BenchStart {
  std::string model_path;
  int64_t parameters = 0;
  int threads = 0;
  Machine machine;
  double load_before = -1;
  bool peak_resets = false;
};
// Checks that the PyTorch script exists (unless --no-pytorch), sets the intra-op threads and
// prints the header: "dit-bench <name>", the command, machine and load, threads (followed by
// `threads_note`), model, engine and how memory is measured.
BenchStart start_token_bench(const std::string& name, const TokenBenchOptions& o, FlowNetImpl& net,
                             const std::string& model_path, const std::string& threads_note);

// How the forward's batch is named in the output.
struct ForwardShape {
  std::string header;    // the table's first column: "B x L"
  std::string cell;      // its value: "100 x 100"
  std::string describe;  // "batch 100 x length 100 tokens"
  int64_t batch = 0;     // for the JSON's per-second figures
};

struct ForwardComparison {
  Timing engine;
  Memory memory;           // the engine's timed forwards
  nlohmann::json pytorch;  // the script's JSON; null with --no-pytorch
  double ratio = 0;        // pytorch median / engine median
  bool parity_ok = true;
};
// (a) the forward: the engine's output on `timed` and `mixed` (the sampler's inference path
// under NoGradGuard), the engine timed on `timed`, then the PyTorch process (parity on both
// batches, its timing of `timed`); prints the parity lines and the table row.
ForwardComparison compare_forward(const std::string& name, const TokenBenchOptions& o,
                                  FlowNetImpl& net, const BenchStart& start,
                                  const ForwardBatch& timed, const ForwardBatch& mixed,
                                  const ForwardShape& shape);

// One row of the sampling table: per-repeat times (ms) and, where measured, the phase's memory.
struct PhaseRow {
  std::string name;
  const std::vector<double>* samples = nullptr;
  const Memory* memory = nullptr;  // null: "-"
  std::string what;
};
// Prints the table (share = median / the median of `total`) and returns each row's JSON by name,
// with `per_s_key` = count per second at the median.
nlohmann::json print_phases(const std::vector<PhaseRow>& rows, const std::vector<double>& total,
                            int64_t count, const std::string& per_s_key);

// Prints the memory note and the load at the end; writes the JSON record to --json (common
// fields; `forward` merged into "forward", `sampling` as "sampling"); then throws dit::Error if
// the parity check failed.
void finish_token_bench(const std::string& name, const TokenBenchOptions& o, FlowNetImpl& net,
                        const BenchStart& start, const ForwardComparison& fwd,
                        const nlohmann::json& forward, const nlohmann::json& sampling);

}  // namespace dit::bench
