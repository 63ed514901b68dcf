#pragma once
// The pieces every dit-bench subcommand shares (defined in dit_bench.cpp): the machine line, the
// timing protocol and its statistics, the JSON of a timing, a temporary directory, running a
// baseline process (the PyTorch scripts next to this file), and the resident memory of a phase.
#include <dit/error.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <dit/fs.h>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace dit::bench {

struct Machine {
  std::string cpu = "unknown CPU";
  int cores = 0;  // logical processors listed in /proc/cpuinfo
  std::string line() const { return fmt::format("{}, {} logical cores", cpu, cores); }
};

// The 1-minute load average from /proc/loadavg (negative when unreadable).
double load_average();
Machine machine();
// The SIMD flags of /proc/cpuinfo that decide kernel speed (fma, avx2, avx512*, amx*), or
// "unknown": printed beside every table.
std::string cpu_flags_line();
std::string libtorch_version();

// Timing protocol shared by every subcommand and by the PyTorch scripts: untimed warm-up calls
// until at least `warmup` were made AND they took at least `warmup_time` seconds (so both sides
// reach their steady state: allocator caches, thread pools, packed weights, CPU clocks), then
// `iters` timed calls, or (iters == 0) timed calls until they add up to `min_time` seconds and
// at least `min_iters` were made. The median is the reported figure, with min and max beside it.
struct Protocol {
  int warmup = 3;
  double warmup_time = 2.0;
  int iters = 0;
  double min_time = 2.0;
  int min_iters = 5;
  std::string describe() const {
    const std::string w = fmt::format("warm-up >= {} calls and >= {:g} s", warmup, warmup_time);
    return iters > 0 ? fmt::format("{}, then {} timed iterations; median [min..max]", w, iters)
                     : fmt::format("{}, then timed iterations until {:g} s and >= {}; median [min..max]",
                                   w, min_time, min_iters);
  }
  // Runs fn until the warm-up rule above is met.
  template <class F>
  void warm_up(F&& fn) const {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (int i = 0; i < warmup || std::chrono::duration<double>(clock::now() - start).count() < warmup_time; ++i)
      fn();
  }
};

struct Timing {
  std::vector<double> samples_ms;
  double median_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0, stdev_ms = 0;
};

// Median, min, max, mean and standard deviation of timed samples (ms).
Timing summarize(std::vector<double> samples);

template <class F>
Timing time_runs(F&& fn, const Protocol& p) {
  using clock = std::chrono::steady_clock;
  p.warm_up(fn);
  std::vector<double> samples;
  double total_s = 0;
  while (true) {
    auto start = clock::now();
    fn();
    double dt = std::chrono::duration<double>(clock::now() - start).count();
    samples.push_back(dt * 1e3);
    total_s += dt;
    if (p.iters > 0 ? static_cast<int>(samples.size()) >= p.iters
                    : total_s >= p.min_time && static_cast<int>(samples.size()) >= p.min_iters)
      break;
  }
  return summarize(std::move(samples));
}

// Several contenders timed in interleaved rounds (see dit_bench.cpp).
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& fns,
                                     const Protocol& p);

// {iters, median_ms, min_ms, max_ms, mean_ms, stdev_ms, img_per_s (batch / median), samples_ms}
nlohmann::json timing_json(const Timing& t, int64_t batch);

// A directory under $TMPDIR (or /tmp) removed on destruction unless kept.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = (base && *base ? std::string(base) : std::string("/tmp")) + "/" + prefix +
                       "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
      throw Error(fmt::format("cannot create a temporary directory {}", tmpl));
    path_ = buf.data();
  }
  ~TempDir() {
    if (keep_) return;
    std::error_code ec;
    dit::fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

std::string shell_quote(const std::string& s);
// Runs argv through /bin/sh; returns its stdout (stderr passes through). Throws on failure.
// `env`: NAME=value settings for that process only; `merge_stderr`: capture stderr too (and
// include the output in the error).
std::string run_capture(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                        bool merge_stderr = false);
// The environment a baseline process gets so that its thread count is what the engine uses:
// OMP_NUM_THREADS (read by libgomp and OpenBLAS when they load, before torch.set_num_threads can
// act; without it a PyTorch process on this stack runs measurably slower, which would flatter
// the engine) and OPENBLAS_NUM_THREADS / MKL_NUM_THREADS.
std::vector<std::string> baseline_env(int threads);
// A time in ms for a table cell: 1 decimal from 100 ms on, else 2.
std::string ms_cell(double v);

// "median [min..max]" of a timing, as ms_cell.
inline std::string spread(const Timing& t) {
  return fmt::format("{} [{}..{}]", ms_cell(t.median_ms), ms_cell(t.min_ms), ms_cell(t.max_ms));
}

// ---- resident memory (/proc/self/status) ----------------------------------------------------

// A "VmRSS" / "VmHWM" line of /proc/self/status in kB (-1 when absent).
inline int64_t status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where refused.
inline bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

struct Memory {
  int64_t rss_before_kb = 0;  // at the start of the phase
  int64_t peak_kb = 0;        // VmHWM at its end (since the reset)
  nlohmann::json to_json() const {
    return {{"rss_before_mib", rss_before_kb / 1024.0}, {"peak_rss_mib", peak_kb / 1024.0},
            {"growth_mib", (peak_kb - rss_before_kb) / 1024.0}};
  }
};

// Runs fn with the peak reset before it and returns its time (ms); keeps the largest peak seen
// in `mem`.
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

// kB as whole MiB, for a table cell.
inline std::string mib(int64_t kb) { return fmt::format("{:.0f}", kb / 1024.0); }

extern std::string g_command_line;  // the command line, for the JSON record

}  // namespace dit::bench
