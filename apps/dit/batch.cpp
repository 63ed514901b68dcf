// dit batch JOB.toml: run (a shard of) a batch sampling job; resumable, SLURM/MPI aware.
#include <fmt/format.h>

#include "commands.h"
#ifdef DIT_HAVE_JOBS
#include <dit/error.h>
#include <dit/jobs.h>
#endif

namespace dit::cli {

void add_batch(CLI::App& app) {
  struct Args {
    std::string job, shard;
    bool dry_run = false, quiet = false;
    int threads = -1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "batch",
      "Run a batch sampling job file (TOML). The shard comes from --shard, else from a SLURM "
      "array (SLURM_ARRAY_TASK_ID/COUNT), else from mpirun (OMPI_COMM_WORLD_RANK/SIZE). "
      "Rerunning the same command resumes: finished samples are skipped.");
  cmd->add_option("job", a->job, "Job file (TOML); see docs/batch-jobs.md")->required();
  cmd->add_option("--shard", a->shard, "Run shard i of n (\"i/n\", 0-based)");
  cmd->add_option("-t,--threads", a->threads, "Threads (overrides the job file; 0: all cores)");
  cmd->add_flag("--dry-run", a->dry_run, "Validate the job file and print the plan; write nothing");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress line");
  cmd->callback([a] {
#ifdef DIT_HAVE_JOBS
    auto job = jobs::parse_job_file(a->job);
    if (a->threads >= 0) job.threads = a->threads;
    jobs::RunOptions options;
    options.shard = jobs::shard_from(a->shard);
    options.dry_run = a->dry_run;
    options.quiet = a->quiet;
    auto r = jobs::run_job(job, options);
    if (a->dry_run) return;
    fmt::print(stderr, "{}: {} of {} samples written, {} resumed, {} flagged invalid, {:.1f} s ({:.2f} samples/s){}\n",
               r.output, r.written, r.planned, r.skipped, r.invalid, r.seconds,
               r.seconds > 0 ? r.written / r.seconds : 0.0,
               r.interrupted ? "; interrupted: rerun the same command to finish" : "");
    if (r.interrupted) throw Error(fmt::format("{}: interrupted by a signal after a complete batch", r.output));
#else
    throw std::runtime_error("dit batch: this build has no batch jobs (needs HDF5 and libtomlplusplus-dev)");
#endif
  });
}

}  // namespace dit::cli
