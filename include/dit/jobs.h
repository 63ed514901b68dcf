#pragma once
// Batch sampling jobs (`dit batch JOB.toml`, `dit merge`): a job file names the domain, model,
// sampler, sample count, seed, inputs and output. A job is planned once into batches; the plan
// depends only on the job file, so every shard and every resume computes the same batches and
// the same samples, bit for bit, as one uninterrupted run. Output is H5MD (dit/h5md.h); the
// layout is documented in docs/output-format.md.
#include <dit/domain.h>
#include <dit/guidance.h>
#include <dit/h5md.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dit::jobs {

// Sampler settings of a job ([sampler] table).
struct SamplerSettings {
  std::string name = "euler";
  SampleOptions options;     // steps, time grid, atol/rtol, diffusion
  GuidanceOptions guidance;  // cfg_scale, cfg_interval, cfg_rescale
};

// Most samples one job may declare (the plan holds every sample of the job in memory).
constexpr int64_t kMaxJobSamples = 1'000'000'000;

// A parsed and validated job file.
struct Job {
  std::string path;          // the job file
  std::string text;          // its contents, stored verbatim in /parameters/job
  std::string domain;        // registered batch domain ("image")
  std::string model;         // model file; empty: the domain's bundled default
  int64_t samples = 0;       // total samples of the whole job (all shards)
  uint64_t seed = 0;         // sample k uses dit::mix_seed(seed, k)
  std::string output;        // H5MD file of the unsharded job
  int64_t batch_size = 64;   // most samples per model batch
  int64_t max_batch_tokens = 0;  // most padded tokens per batch (0: batch_size x largest sample)
  bool bucketing = true;     // schedule batches by token count (false: in index order)
  int threads = 0;           // 0: all cores
  std::string device = "cpu";  // cpu, cuda, cuda:N, auto (dit/inference.h Placement)
  std::string dtype;           // fp32, bf16, fp16; "" = $DIT_LINEAR_PRECISION, else fp32
  SamplerSettings sampler;
  nlohmann::json domain_options;  // the [<domain>] table, validated by the domain
  // Canonical JSON of everything that decides the samples (not output, threads, device; dtype
  // when given): shards and resumes must agree on it.
  nlohmann::json fingerprint() const;
};

// Reads and validates a job file. Unknown keys, wrong types and bad values throw dit::Error
// naming the file and the key ("job.toml: [sampler] steps: must be >= 1, got 0").
Job parse_job_file(const std::string& path);
Job parse_job(const std::string& text, const std::string& path);

// Which part of a job this process runs.
struct Shard {
  int64_t index = 0, count = 1;
  std::string source = "none";  // "--shard", "SLURM array", "MPI", "none"
};
// From `flag` ("i/n", may be empty), else SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) and
// SLURM_ARRAY_TASK_COUNT, else OMPI_COMM_WORLD_RANK/SIZE (or PMI_RANK/PMI_SIZE), else 0/1.
Shard shard_from(const std::string& flag);
// OUTPUT for one shard: "out.h5" -> "out.shard-0002-of-0004.h5" (unchanged when count is 1).
std::string shard_output(const std::string& output, const Shard& shard);

// One batch of a job: sample indices, in the order they are computed. A job is planned into
// batches by the runtime scheduler (src/jobs/plan.h: bucketing by token count, sharding).
using Batch = std::vector<int64_t>;

// A domain's side of a batch job. Each domain registers one in its own file
// (DIT_REGISTER_BATCH_DOMAIN) and validates its own [<domain>] table.
class BatchDomain {
 public:
  virtual ~BatchDomain() = default;
  // Validates the job's domain table and loads the model (called once, before anything else).
  virtual void configure(const Job& job) = 0;
  // Model tokens of sample k (for scheduling) and the job's largest sample.
  virtual int64_t tokens(int64_t sample) const = 0;
  // One line per setting for --dry-run and the log (model, inputs, capacities).
  virtual std::vector<std::string> describe() const = 0;
  // Parameters recorded in /parameters/model and /parameters/<domain>.
  virtual nlohmann::json parameters() const = 0;
  // Creates the domain's groups in a new output file (particle groups, boxes, ...).
  virtual void create_output(h5md::File& file) const = 0;
  // Generates the samples of one batch and appends them to `file` (frames in batch order).
  // Returns, per sample, whether it is valid (finite and passing the domain's checks); an
  // invalid sample is still written, flagged in /samples/valid, with the reason logged.
  virtual std::vector<bool> run_batch(const Batch& batch, h5md::File& file,
                                      Progress& progress) = 0;
};

using BatchDomainFactory = std::function<std::unique_ptr<BatchDomain>()>;
// Returns false (and keeps the first) on an empty or taken name (dit::Registry).
bool register_batch_domain(const std::string& name, BatchDomainFactory factory);

// What a structure domain's run_batch does first: the batch's samples through dit::generate,
// over runs of consecutive indices (sample k's noise is seeded by (seed, k) wherever it lands),
// `request(k)` giving sample k's request. Returns them in batch order with their seeds [n]
// (mix_seed(sampling.seed, k)) and valid flags (finite and passing every check); a sample that
// became non-finite is reported on stderr, written and flagged by the caller, never dropped.
template <class R, class S, class MakeRequest>
std::vector<Generated<S>> generate_batch(const StructureDomain<R, S>& domain, FlowNetImpl& net,
                                         const Batch& batch, MakeRequest request,
                                         const FlowSampling& sampling, Progress& progress,
                                         torch::Tensor& seeds, std::vector<bool>& valid) {
  std::vector<Generated<S>> out;
  for (size_t begin = 0; begin < batch.size();) {
    size_t end = begin + 1;
    while (end < batch.size() && batch[end] == batch[end - 1] + 1) ++end;
    std::vector<R> requests;
    for (size_t i = begin; i < end; ++i) requests.push_back(request(batch[i]));
    auto run = generate(domain, net, requests, sampling, progress, batch[begin]);
    for (auto& g : run) out.push_back(std::move(g));
    begin = end;
  }
  const auto n = static_cast<int64_t>(out.size());
  seeds = torch::empty({n}, torch::kInt64);
  valid.assign(out.size(), false);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t seed = mix_seed(sampling.seed, static_cast<uint64_t>(out[i].index));
    seeds[i] = static_cast<int64_t>(seed);
    valid[i] = out[i].finite && out[i].checks.valid();
    if (!out[i].finite)
      std::fprintf(stderr, "sample %lld (seed %llu) became non-finite during sampling: written, flagged invalid\n",
                   static_cast<long long>(out[i].index), static_cast<unsigned long long>(seed));
  }
  return out;
}
std::unique_ptr<BatchDomain> make_batch_domain(const std::string& name);  // throws if unknown
std::vector<std::string> batch_domain_names();

#define DIT_REGISTER_BATCH_DOMAIN(NAME, TYPE)                                                   \
  static const bool dit_batch_domain_registered_##TYPE = [] {                                 \
    ::dit::jobs::register_batch_domain(NAME, [] { return std::make_unique<TYPE>(); });          \
    return true;                                                                                \
  }()

struct RunOptions {
  Shard shard;
  bool dry_run = false;
  bool quiet = false;  // no progress line
};

struct RunReport {
  std::string output;
  int64_t planned = 0;    // samples of this shard
  int64_t skipped = 0;    // already complete in the output (resume)
  int64_t written = 0;    // written by this run
  int64_t invalid = 0;    // written but flagged invalid (non-finite, failed checks)
  double seconds = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM after finishing a batch
};

// Runs (or, with dry_run, prints the plan of) this shard of a job. Creates the shard's output,
// or resumes it: samples already complete are skipped; a file written by a different job is
// an error. Holds an exclusive lock on OUTPUT.lock while running (a second process on the same
// output fails at once). SIGINT/SIGTERM finish the current batch, flush and return.
RunReport run_job(const Job& job, const RunOptions& options);

// Joins shard files of one job into `output`: checks that they come from the same job and
// that every sample 0..N-1 is present exactly once, then writes samples in index order
// (written to a temp name and renamed). Throws dit::Error naming the missing or duplicate
// sample and the files.
void merge_outputs(const std::vector<std::string>& inputs, const std::string& output);

}  // namespace dit::jobs
