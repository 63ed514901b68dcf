// dit merge -o OUT.h5 SHARD...: join the shard outputs of one batch job.
#include <fmt/format.h>

#include "commands.h"
#ifdef DIT_HAVE_JOBS
#include <dit/jobs.h>
#endif

namespace dit::cli {

void add_merge(CLI::App& app) {
  struct Args {
    std::vector<std::string> inputs;
    std::string output;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "merge", "Join the shard outputs of a batch job into one file, checking that every sample "
               "is present exactly once; samples are written in index order");
  cmd->add_option("shards", a->inputs, "Shard files (*.shard-IIII-of-NNNN.h5)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->output, "Merged output file")->required();
  cmd->callback([a] {
#ifdef DIT_HAVE_JOBS
    jobs::merge_outputs(a->inputs, a->output);
    fmt::print(stderr, "merged {} files -> {}\n", a->inputs.size(), a->output);
#else
    throw std::runtime_error("dit merge: this build has no batch jobs (needs HDF5 and libtomlplusplus-dev)");
#endif
  });
}

}  // namespace dit::cli
