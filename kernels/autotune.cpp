// Autotuning switch and cache file (kernels/autotune.h, include/dit/kernels.h).
#include "kernels/autotune.h"

#include <dit/error.h>
#include <dit/files.h>
#include <dit/kernels.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dit/fs.h>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

namespace dit::kernels {

namespace {
constexpr const char* kFormat = "dit-engine autotune 1";

// -1: not decided yet ($DIT_AUTOTUNE on first use), 0 off, 1 on.
std::atomic<int> g_enabled{-1};

bool env_enabled() {
  const char* env = std::getenv("DIT_AUTOTUNE");
  if (!env || !*env) return true;
  const std::string v = env;
  if (v == "0" || v == "off" || v == "false" || v == "no") return false;
  if (v == "1" || v == "on" || v == "true" || v == "yes") return true;
  throw Error(fmt::format("DIT_AUTOTUNE: expected 0/off or 1/on, got '{}'", v));
}
}  // namespace

void set_autotune(bool enabled) { g_enabled = enabled ? 1 : 0; }

bool autotune_enabled() {
  int v = g_enabled.load();
  if (v < 0) {
    v = env_enabled() ? 1 : 0;
    g_enabled = v;
  }
  return v == 1;
}

std::string autotune_cache_path() {
  if (const char* p = std::getenv("DIT_AUTOTUNE_CACHE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (dit::fs::path(x) / "dit-engine" / "autotune.json").string();
  if (const char* h = std::getenv("HOME"); h && *h)
    return (dit::fs::path(h) / ".cache" / "dit-engine" / "autotune.json").string();
  return "";  // no home: tune per process, remember nothing
}

namespace autotune {

namespace {
std::mutex g_mutex;
bool g_loaded = false;
nlohmann::json g_entries = nlohmann::json::object();  // this process's view of the file
bool g_write_failed = false;

// The entries of the cache file, or an empty object (a corrupt file is reported, then
// replaced on the next write).
nlohmann::json read_entries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    auto doc = nlohmann::json::parse(ss.str());
    if (doc.value("format", "") != kFormat || !doc.contains("entries") ||
        !doc["entries"].is_object())
      throw std::runtime_error(fmt::format("field 'format' is not '{}'", kFormat));
    return doc["entries"];
  } catch (const std::exception& e) {
    std::cerr << fmt::format("dit: warning: autotune cache {} is unreadable ({}); it will be "
                             "rebuilt\n", path, e.what());
    return nlohmann::json::object();
  }
}

void load_locked() {
  if (g_loaded) return;
  g_loaded = true;
  const std::string path = autotune_cache_path();
  if (!path.empty()) g_entries = read_entries(path);
}

// Merges `key: value` into the file under an exclusive lock (another process may be writing
// the same file), then replaces it atomically. Returns the value in force for `key`.
nlohmann::json merge_into_file(const std::string& path, const std::string& key,
                               const nlohmann::json& value, bool overwrite) {
  namespace fs = dit::fs;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string lock_path = path + ".lock";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw Error(fmt::format("{}: cannot open: {}", lock_path, std::strerror(errno)));
  ::flock(lock, LOCK_EX);
  nlohmann::json entries;
  try {
    entries = read_entries(path);
    if (overwrite || !entries.contains(key)) entries[key] = value;
    const nlohmann::json doc = {{"format", kFormat}, {"entries", entries}};
    write_file_atomic(path, doc.dump(1) + "\n");  // dit/files.h
  } catch (...) {
    ::flock(lock, LOCK_UN);
    ::close(lock);
    throw;
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  g_entries = entries;  // also picks up what other processes stored meanwhile
  return entries[key];
}
}  // namespace

const std::string& cpu_device_name() {
  static const std::string name = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) != 0) continue;
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return "cpu:" + v;
    }
    return std::string("cpu:unknown");
  }();
  return name;
}

std::optional<nlohmann::json> lookup(const std::string& key) {
  std::lock_guard<std::mutex> lock(g_mutex);
  load_locked();
  auto it = g_entries.find(key);
  if (it == g_entries.end()) return std::nullopt;
  return *it;
}

nlohmann::json remember(const std::string& key, const nlohmann::json& value, bool overwrite) {
  std::lock_guard<std::mutex> lock(g_mutex);
  load_locked();
  if (!overwrite && g_entries.contains(key)) return g_entries[key];
  const std::string path = autotune_cache_path();
  if (!path.empty() && !g_write_failed) {
    try {
      return merge_into_file(path, key, value, overwrite);
    } catch (const std::exception& e) {
      g_write_failed = true;
      std::cerr << fmt::format("dit: warning: autotune results are not kept ({}); set "
                               "DIT_AUTOTUNE_CACHE to a writable file or DIT_AUTOTUNE=0\n",
                               e.what());
    }
  }
  g_entries[key] = value;
  return value;
}

std::vector<double> time_candidates_ms(const std::vector<std::function<void()>>& candidates,
                                       double budget_ms) {
  using clock = std::chrono::steady_clock;
  auto once = [](const std::function<void()>& fn) {
    const auto t0 = clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  };
  std::vector<double> best;
  double slowest = 1e-3;
  for (const auto& fn : candidates) slowest = std::max(slowest, once(fn));  // untimed round
  const int rounds = std::clamp(static_cast<int>(budget_ms / slowest), 2, 7);
  best.assign(candidates.size(), 1e300);
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < candidates.size(); ++i) best[i] = std::min(best[i], once(candidates[i]));
  return best;
}

void reload() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_loaded = false;
  g_write_failed = false;
  g_entries = nlohmann::json::object();
}

}  // namespace autotune
}  // namespace dit::kernels
