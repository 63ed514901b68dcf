// dit-bench scheduler: samples/s of the DiT blocks on requests of different token counts,
// batched in index order (padding every batch to its largest sample) against batches from the
// runtime scheduler (dit::jobs::plan_batches with bucketing), in the same run.
//
//   dit-bench scheduler [--config S/2] [--requests 256] [--batch 32] [--min-tokens 24]
//                       [--max-tokens 160] [--threads N] [--seed 0]
//
// Token counts are drawn uniformly from [min, max] (ligand atoms plus pocket context tokens span
// roughly this range); both plans run the same requests through run_blocks with key masks.
#include <CLI/CLI.hpp>
#include <dit/model.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <chrono>
#include <thread>

#ifdef DIT_HAVE_JOBS
#include "src/jobs/plan.h"
#endif

namespace dit::bench {

namespace {
struct SchedulerOptions {
  std::string config = "S/2";
  int64_t requests = 256, batch = 32, min_tokens = 24, max_tokens = 160;
  int threads = 0;
  uint64_t seed = 0;
};

#ifdef DIT_HAVE_JOBS
void run_scheduler(const SchedulerOptions& o) {
  const int threads = set_threads(o.threads);
  torch::InferenceMode inference;
  auto config = DiTConfig::preset(o.config);
  torch::manual_seed(static_cast<int64_t>(o.seed));
  DiT model(config);
  model->eval();
  const int64_t d = config.hidden_size;
  auto gen = sample_generator(o.seed, 0);
  auto sizes = torch::randint(o.min_tokens, o.max_tokens + 1, {o.requests}, gen, torch::kLong);
  std::vector<jobs::Request> requests;
  for (int64_t k = 0; k < o.requests; ++k) requests.push_back({k, sizes[k].item<int64_t>()});

  auto run_plan = [&](const std::vector<jobs::Batch>& plan, int64_t& padded) {
    padded = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& b : plan) {
      int64_t n_max = 0;
      for (auto k : b) n_max = std::max(n_max, requests[k].tokens);
      const auto bsz = static_cast<int64_t>(b.size());
      auto mask = torch::zeros({bsz, n_max}, torch::kBool);
      for (int64_t i = 0; i < bsz; ++i) mask[i].narrow(0, 0, requests[b[i]].tokens).fill_(true);
      auto tokens = torch::randn({bsz, n_max, d});
      auto c = torch::randn({bsz, d});
      model->run_blocks(tokens, c, mask);
      padded += bsz * n_max;
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  int64_t real = 0;
  for (const auto& r : requests) real += r.tokens;
  auto fifo = jobs::plan_batches(requests, o.batch, 0, false);
  auto bucketed = jobs::plan_batches(requests, o.batch, 0, true);
  int64_t pad_fifo = 0, pad_bucket = 0;
  run_plan({fifo.front()}, pad_fifo);  // warm-up
  // Alternate the two plans twice and keep each one's best time.
  double t_fifo = 1e30, t_bucket = 1e30;
  for (int rep = 0; rep < 2; ++rep) {
    t_fifo = std::min(t_fifo, run_plan(fifo, pad_fifo));
    t_bucket = std::min(t_bucket, run_plan(bucketed, pad_bucket));
  }
  fmt::print("dit-bench scheduler: {} blocks (hidden {}, depth {}), f32, {} threads ({} cores)\n",
             o.config, d, config.depth, threads, std::thread::hardware_concurrency());
  fmt::print("{} requests, tokens uniform in [{}, {}], batch {}\n", o.requests, o.min_tokens,
             o.max_tokens, o.batch);
  fmt::print("| plan | batches | padded tokens / real | samples/s |\n|---|---|---|---|\n");
  fmt::print("| index order | {} | {:.2f} | {:.1f} |\n", fifo.size(), double(pad_fifo) / real, o.requests / t_fifo);
  fmt::print("| bucketed by tokens | {} | {:.2f} | {:.1f} |\n", bucketed.size(), double(pad_bucket) / real,
             o.requests / t_bucket);
  fmt::print("scheduler speed-up: {:.2f}x\n", t_fifo / t_bucket);
}
#endif
}  // namespace

void add_scheduler(CLI::App& app) {
  auto o = std::make_shared<SchedulerOptions>();
  auto* cmd = app.add_subcommand("scheduler", "Samples/s with and without the bucketing scheduler (variable token counts)");
  cmd->add_option("--config", o->config, "DiT preset for the blocks")->capture_default_str();
  cmd->add_option("--requests", o->requests, "Requests")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batch, "Most samples per batch")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--min-tokens", o->min_tokens, "Smallest request")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-tokens", o->max_tokens, "Largest request")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for sizes and weights")->capture_default_str();
  cmd->callback([o] {
#ifdef DIT_HAVE_JOBS
    run_scheduler(*o);
#else
    throw std::runtime_error("dit-bench scheduler: this build has no batch jobs (needs HDF5 and toml++)");
#endif
  });
}

}  // namespace dit::bench
