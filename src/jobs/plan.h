#pragma once
// Internal to the core (and seen by its tests and dit-bench): the runtime scheduler that plans a
// job into batches (include/dit/jobs.h, run_job).
#include <dit/jobs.h>

#include <cstdint>
#include <vector>

namespace dit::jobs {

// One request of the runtime scheduler: a sample and the tokens it occupies in the model.
struct Request {
  int64_t index = 0;
  int64_t tokens = 0;
};

// Packs requests into batches of at most `batch_size` samples and `max_batch_tokens` padded
// tokens (count x largest in the batch). With bucketing, requests are sorted by token count
// first (stable), so batches hold samples of similar size and little padding; without, they
// are packed in index order. Deterministic: a function of its arguments only.
std::vector<Batch> plan_batches(std::vector<Request> requests, int64_t batch_size,
                                int64_t max_batch_tokens, bool bucketing);
// The batches shard `shard` runs: batches b with b % count == index.
std::vector<Batch> shard_batches(const std::vector<Batch>& plan, const Shard& shard);

}  // namespace dit::jobs
