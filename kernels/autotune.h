#pragma once
// The autotuning cache shared by the kernel backends (include/dit/kernels.h, "Autotuning").
// A backend names a choice by a key that starts with the device it was measured on, times its
// candidates with time_candidate_ms, and keeps the winner with remember(). Entries live in one
// JSON file per user (autotune_cache_path()), read once per process and merged on every write
// under a file lock, so processes that tune the same key at the same time agree on one value:
// the first one written wins, and remember() returns it.
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dit::kernels::autotune {

// "cpu:<model name from /proc/cpuinfo>": the first part of every CPU key.
const std::string& cpu_device_name();

// The cached value of `key`, if any (the file is read on first use; a corrupt or unreadable
// file is reported once on stderr and treated as empty).
std::optional<nlohmann::json> lookup(const std::string& key);

// Stores `value` under `key` unless another process stored one first (overwrite: replace it)
// and returns the value now in force. A cache that cannot be written keeps the value for this
// process only (reported once on stderr).
nlohmann::json remember(const std::string& key, const nlohmann::json& value, bool overwrite);

// Milliseconds of one call of each candidate: one untimed round, then timed rounds that call
// every candidate once in turn (so load changes hit all of them alike), as many as fit in
// `budget_ms` per candidate (at least 2, at most 7); each candidate's best round counts.
std::vector<double> time_candidates_ms(const std::vector<std::function<void()>>& candidates,
                                       double budget_ms);

// Forgets what this process read from the cache file (tests point DIT_AUTOTUNE_CACHE at a new
// file and reload).
void reload();

}  // namespace dit::kernels::autotune
