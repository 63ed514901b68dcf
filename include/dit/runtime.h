#pragma once
// Runtime services: threads, progress reporting, per-sample random generators, logging.
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dit {

// Sets libtorch's intra-op threads; n <= 0 means every CPU this process may use (its
// affinity mask: a SLURM task or taskset gets its share, not the whole node). Returns the count.
int set_threads(int n);

// While one exists, SIGINT and SIGTERM set a flag instead of ending the process, so that a long
// run (a batch job, a screen) finishes its current unit of work, flushes and says how to resume.
// The previous handlers are restored when it is destroyed. One at a time per process.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  bool requested() const { return flag().load(); }
  // The flag itself (for code that polls an atomic, such as docking::dock_stream).
  static const std::atomic<bool>& flag();

 private:
  void (*old_int_)(int) = nullptr;
  void (*old_term_)(int) = nullptr;
};

// --device of the sampling commands (and `device` of job files): "cpu", "cuda", "cuda:N" or
// "auto" (the first GPU when this build's libtorch has CUDA and the machine has a GPU, else the
// CPU). Asking for CUDA where there is none is a dit::Error that names `what` and says which is
// missing (a CPU-only libtorch, such as Debian's: docs/gpu-build.md; no GPU visible; N out of
// range); so is a malformed spec.
torch::Device resolve_device(const std::string& spec, const std::string& what = "--device");

// Seconds since this process started (exec), dynamic loading and static initialisers included
// (from /proc/self/stat; 0 where unreadable): the start-up figure of the commands' --timings.
double process_age_s();

// Generator for sample `index` of a run seeded with `seed`: the same (seed, index) gives the
// same draws whatever the batch, shard or resume point (SplitMix64 of both).
torch::Generator sample_generator(uint64_t seed, uint64_t index);
uint64_t mix_seed(uint64_t seed, uint64_t index);

// Draws N(0, I) of `shape` for each sample index in [first, first + count): [count, shape...].
torch::Tensor sample_noise(uint64_t seed, int64_t first, int64_t count,
                           torch::IntArrayRef shape_per_sample);

// A progress bar on a terminal ("label 12/30 [=====>    ] 40% 3.1 it/s ETA 0:05 loss 0.12"),
// or one plain log line every `log_every` seconds when stderr is not a TTY (SLURM logs, CI).
class Progress {
 public:
  Progress() = default;  // silent
  Progress(std::string label, int64_t total, bool enabled = true, double log_every_s = 10.0);
  void set_total(int64_t total) { total_ = total; }
  // Sets the position to `done` and an optional extra field ("loss 0.123").
  void update(int64_t done, const std::string& extra = "");
  void advance(int64_t by = 1, const std::string& extra = "") { update(done_ + by, extra); }
  void finish(const std::string& extra = "");
  int64_t done() const { return done_; }
  double elapsed_s() const;

 private:
  void render(bool final);
  std::string label_;
  int64_t total_ = 0, done_ = 0, start_done_ = -1;
  bool enabled_ = false, tty_ = false, finished_ = false;
  double log_every_s_ = 10.0, last_log_s_ = -1e9;
  std::string extra_;
  std::chrono::steady_clock::time_point start_{std::chrono::steady_clock::now()};
};

// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

// "0.1.0+<git revision at configure time>": written into every output file's provenance.
std::string version_string();

// Directory of the bundled data (models, classifier): $DIT_DATA_DIR, else the installed or
// source data/ directory.
std::string data_dir();

}  // namespace dit
