// Runs one shard of a batch job: plan, lock, create or resume the output, batches, flushes.
#include <dit/error.h>
#include <dit/files.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <dit/fs.h>
#include <set>

#include "src/jobs/plan.h"

namespace dit::jobs {

namespace {

nlohmann::json run_parameters(const Job& job, const BatchDomain& domain, const Shard& shard) {
  nlohmann::json p = domain.parameters();
  const auto& o = job.sampler.options;
  const auto& g = job.sampler.guidance;
  p["sampler"] = {{"name", job.sampler.name},       {"steps", o.steps},
                  {"time_grid", o.grid.name},       {"shift", o.grid.shift},
                  {"atol", o.atol},                 {"rtol", o.rtol},
                  {"diffusion", o.diffusion},       {"cfg_scale", g.scale},
                  {"cfg_interval", {g.t_lo, g.t_hi}}, {"cfg_rescale", g.rescale}};
  p["seeds"] = {{"job_seed", std::to_string(job.seed)},
                {"rule", "sample k starts from noise seeded by mix_seed(job_seed, k) "
                         "(SplitMix64); its seed is /samples/seed[frame]"}};
  p["job"] = {{"file", job.path},
              {"text", job.text},
              {"samples", job.samples},
              {"batch_size", job.batch_size},
              {"bucketing", job.bucketing},
              {"fingerprint", job.fingerprint().dump()},
              {"shard_index", shard.index},
              {"shard_count", shard.count}};
  return p;
}

}  // namespace

RunReport run_job(const Job& job, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int threads = set_threads(job.threads);
  auto domain = make_batch_domain(job.domain);
  domain->configure(job);
  std::vector<Request> requests(static_cast<size_t>(job.samples));
  for (int64_t k = 0; k < job.samples; ++k) requests[k] = {k, domain->tokens(k)};
  const auto plan = plan_batches(requests, job.batch_size, job.max_batch_tokens, job.bucketing);
  const auto mine = shard_batches(plan, options.shard);

  RunReport report;
  report.output = shard_output(job.output, options.shard);
  for (const auto& b : mine) report.planned += static_cast<int64_t>(b.size());

  const std::string shard_name = fmt::format("shard {}/{}", options.shard.index, options.shard.count);
  if (options.dry_run) {
    fmt::print("job {}: domain {}, {} samples, seed {}, sampler {} ({} steps, CFG {})\n", job.path,
               job.domain, job.samples, job.seed, job.sampler.name, job.sampler.options.steps,
               job.sampler.guidance.scale);
    for (const auto& line : domain->describe()) fmt::print("  {}\n", line);
    fmt::print("plan: {} batches of at most {} samples ({}), {} threads\n", plan.size(),
               job.batch_size, job.bucketing ? "bucketed by token count" : "in index order", threads);
    fmt::print("{} (from {}): {} batches, {} samples -> {}\n", shard_name, options.shard.source,
               mine.size(), report.planned, report.output);
    return report;
  }

  if (auto dir = dit::fs::path(report.output).parent_path(); !dir.empty()) {
    std::error_code ec;
    dit::fs::create_directories(dir, ec);
    if (ec)
      throw Error(fmt::format("{}: cannot create the output folder {}: {}", report.output,
                              dir.string(), ec.message()));
  }
  OutputLock lock(report.output);
  const std::string fingerprint = job.fingerprint().dump();
  std::set<int64_t> done;
  std::optional<h5md::File> file;
  if (dit::fs::exists(report.output)) {
    file.emplace(report.output, h5md::Mode::Append);
    auto stored = file->string_attribute("parameters/job", "fingerprint");
    if (!stored || *stored != fingerprint)
      throw Error(fmt::format("{}: exists and was written by a different job (its job fingerprint "
                              "differs from {}); choose another output or remove it",
                              report.output, job.path));
    // A previous run of this shard wrote whole batches in plan order, so the file holds a
    // prefix of `mine`. Rows past the last batch that every per-sample dataset holds whole
    // (a kill before /samples/index was extended, a write error that left one dataset longer
    // than another) are dropped, and the kept rows must be the plan's samples.
    int64_t complete = file->rows("samples/index");
    for (const auto& name : file->extendable_datasets()) complete = std::min(complete, file->rows(name));
    int64_t kept = 0;
    for (const auto& b : mine) {
      if (kept + static_cast<int64_t>(b.size()) > complete) break;
      kept += static_cast<int64_t>(b.size());
    }
    file->truncate_rows("", kept);
    if (kept > 0) {
      auto idx = file->read("samples/index");
      if (idx.scalar_type() != torch::kInt64 || idx.dim() != 1)
        throw Error(fmt::format("{}: 'samples/index' is not [N] int64: damaged", report.output));
      const auto* p = idx.data_ptr<int64_t>();
      int64_t row = 0;
      for (const auto& b : mine)
        for (int64_t k : b) {
          if (row == kept) break;
          if (p[row] != k)
            throw Error(fmt::format("{}: row {} holds sample {} where this job's plan has sample "
                                    "{}: not written by this job's plan", report.output, row, p[row], k));
          ++row;
        }
      done.insert(p, p + idx.numel());
    }
  } else {
    // A new file is built under a temporary name until its first flush returned, then renamed:
    // a kill or a write error (disk full) before that leaves no OUTPUT that a rerun would take
    // for a damaged resume.
    AtomicOutput part(report.output);
    try {
      file.emplace(part.temp_path(), h5md::Mode::Create);
      file->write_json("parameters", run_parameters(job, *domain, options.shard));
      domain->create_output(*file);
      file->flush();
      file.reset();
      part.commit();
    } catch (...) {
      file.reset();  // closed before `part` removes the temporary
      throw;
    }
    file.emplace(report.output, h5md::Mode::Append);
  }

  auto present_in = [&](const Batch& batch) {
    return std::count_if(batch.begin(), batch.end(), [&](int64_t k) { return done.count(k); });
  };
  for (const auto& batch : mine)
    if (present_in(batch) == static_cast<int64_t>(batch.size())) report.skipped += static_cast<int64_t>(batch.size());

  StopOnSignal stop_on_signal;
  Progress progress(fmt::format("batch {}", shard_name), report.planned, !options.quiet);
  progress.update(report.skipped, report.skipped ? fmt::format("{} resumed", report.skipped) : "");
  int64_t finished = report.skipped;
  // Space for each batch is reserved before it is written (h5md::File::reserve), so that a full
  // disk stops the job between batches: twice the largest growth of a batch so far, at least
  // 1 MiB.
  int64_t largest_growth = 0;
  const auto file_bytes = [&] {
    std::error_code ec;
    const auto n = dit::fs::file_size(report.output, ec);
    return ec ? int64_t{0} : static_cast<int64_t>(n);
  };
  for (const auto& batch : mine) {
    const auto present = present_in(batch);
    if (present == static_cast<int64_t>(batch.size())) continue;
    if (present != 0)
      throw Error(fmt::format("{}: holds {} of the {} samples of the batch starting at sample {}: "
                              "not written by this job's plan", report.output, present, batch.size(), batch[0]));
    const auto n = static_cast<int64_t>(batch.size());
    const int64_t committed = file->rows("samples/index"), size_before = file_bytes();
    file->reserve(std::max<int64_t>(int64_t{1} << 20, 2 * largest_growth));
    try {
      Progress silent;
      auto valid = domain->run_batch(batch, *file, silent);
      auto indices = torch::tensor(batch, torch::kInt64);
      auto seeds = torch::empty({n}, torch::kInt64);
      auto flags = torch::empty({n}, torch::kUInt8);
      for (int64_t i = 0; i < n; ++i) {
        seeds[i] = static_cast<int64_t>(mix_seed(job.seed, static_cast<uint64_t>(batch[i])));
        flags[i] = static_cast<uint8_t>(valid.at(i));
        report.invalid += valid.at(i) ? 0 : 1;
      }
      h5md::append_sample_records(*file, indices, seeds, flags);
      file->flush();
    } catch (...) {
      // A failed batch (disk full, I/O error) is dropped before the file is closed: closing
      // flushes the extents held in memory, which must not claim rows that never reached disk.
      try {
        file->truncate_rows("", committed);
      } catch (const std::exception&) {  // the resume check drops the rows then
      }
      throw;
    }
    largest_growth = std::max(largest_growth, file_bytes() - size_before);
    report.written += n;
    finished += n;
    progress.update(finished, fmt::format("{} written", report.written));
    if (stop_on_signal.requested()) {
      report.interrupted = true;
      break;
    }
  }
  progress.finish(report.interrupted ? "interrupted: finished the current batch and flushed" : "");
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace dit::jobs
