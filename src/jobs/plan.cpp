// The runtime scheduler: requests of different token counts packed into batches, and the
// batches a shard runs. Everything here is a pure function of the job, so every shard and
// every resume agrees on which samples share a batch (and so on their bits).
#include <dit/error.h>
#include <dit/jobs.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "src/jobs/plan.h"

namespace dit::jobs {

std::vector<Batch> plan_batches(std::vector<Request> requests, int64_t batch_size,
                                int64_t max_batch_tokens, bool bucketing) {
  if (batch_size < 1) throw Error(fmt::format("plan_batches: batch size {} < 1", batch_size));
  int64_t largest = 0;
  for (const auto& r : requests) {
    if (r.tokens < 1) throw Error(fmt::format("plan_batches: sample {} has {} tokens", r.index, r.tokens));
    largest = std::max(largest, r.tokens);
  }
  if (max_batch_tokens <= 0) max_batch_tokens = batch_size * largest;
  if (bucketing)  // similar sizes together: padding to the batch's largest sample costs little
    std::stable_sort(requests.begin(), requests.end(),
                     [](const Request& a, const Request& b) { return a.tokens < b.tokens; });
  std::vector<Batch> plan;
  Batch current;
  int64_t current_max = 0;
  for (const auto& r : requests) {
    const int64_t padded = static_cast<int64_t>(current.size() + 1) * std::max(current_max, r.tokens);
    if (!current.empty() && (static_cast<int64_t>(current.size()) == batch_size || padded > max_batch_tokens)) {
      plan.push_back(std::move(current));
      current.clear();
      current_max = 0;
    }
    current.push_back(r.index);
    current_max = std::max(current_max, r.tokens);
  }
  if (!current.empty()) plan.push_back(std::move(current));
  return plan;
}

std::vector<Batch> shard_batches(const std::vector<Batch>& plan, const Shard& shard) {
  std::vector<Batch> mine;
  for (size_t b = 0; b < plan.size(); ++b)
    if (static_cast<int64_t>(b % static_cast<size_t>(shard.count)) == shard.index) mine.push_back(plan[b]);
  return mine;
}

namespace {
int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (*end) throw Error(fmt::format("environment {}='{}' is not an integer", name, v));
  return x;
}

Shard checked(Shard s, const std::string& what) {
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    throw Error(fmt::format("{}: shard {}/{} is out of range (need 0 <= i < n)", what, s.index, s.count));
  return s;
}
}  // namespace

Shard shard_from(const std::string& flag) {
  if (!flag.empty()) {
    auto slash = flag.find('/');
    Shard s;
    s.source = "--shard";
    try {
      size_t used = 0;
      if (slash == std::string::npos) throw std::invalid_argument("no slash");
      s.index = std::stoll(flag.substr(0, slash), &used);
      if (used != slash) throw std::invalid_argument("index");
      s.count = std::stoll(flag.substr(slash + 1), &used);
      if (used != flag.size() - slash - 1) throw std::invalid_argument("count");
    } catch (const std::exception&) {
      throw Error(fmt::format("--shard '{}': expected i/n, e.g. 0/4", flag));
    }
    return checked(s, "--shard");
  }
  if (std::getenv("SLURM_ARRAY_TASK_ID") && std::getenv("SLURM_ARRAY_TASK_COUNT")) {
    Shard s;
    s.source = "SLURM array";
    s.index = env_int("SLURM_ARRAY_TASK_ID", 0) - env_int("SLURM_ARRAY_TASK_MIN", 0);
    s.count = env_int("SLURM_ARRAY_TASK_COUNT", 1);
    return checked(s, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
  }
  for (auto [rank, size] : {std::pair{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                            std::pair{"PMI_RANK", "PMI_SIZE"}}) {
    if (std::getenv(rank) && std::getenv(size)) {
      Shard s;
      s.source = "MPI";
      s.index = env_int(rank, 0);
      s.count = env_int(size, 1);
      return checked(s, fmt::format("{}/{}", rank, size));
    }
  }
  return {};
}

std::string shard_output(const std::string& output, const Shard& shard) {
  if (shard.count == 1) return output;
  const std::string tag = fmt::format(".shard-{:04d}-of-{:04d}", shard.index, shard.count);
  auto dot = output.rfind('.');
  auto slash = output.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return output + tag;
  return output.substr(0, dot) + tag + output.substr(dot);
}

}  // namespace dit::jobs
