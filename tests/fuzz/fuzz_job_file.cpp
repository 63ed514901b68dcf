// libFuzzer target: job files (TOML) as `dit batch JOB.toml` reads them: toml++'s parser, then
// parse_job's validation of every key (types, ranges, unknown keys, sampler and time-grid
// names), the job fingerprint (the JSON that shards and resumes compare) and the shard names.
// The parser checks `domain` against the registered batch domains; the real image domain
// loads a model in configure(), which the job parser never calls, so a stand-in registers the
// name here (its [image] table is validated by configure(), outside this target).
#include <dit/jobs.h>

#include "fuzz_input.h"

namespace {

class NameOnlyDomain : public dit::jobs::BatchDomain {
 public:
  void configure(const dit::jobs::Job&) override {}
  int64_t tokens(int64_t) const override { return 1; }
  std::vector<std::string> describe() const override { return {}; }
  nlohmann::json parameters() const override { return nlohmann::json::object(); }
  void create_output(dit::h5md::File&) const override {}
  std::vector<bool> run_batch(const dit::jobs::Batch&, dit::h5md::File&, dit::Progress&) override {
    return {};
  }
};
DIT_REGISTER_BATCH_DOMAIN("image", NameOnlyDomain);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    const auto job = dit::jobs::parse_job_file(file.path());
    // What run_job and merge do with a parsed job: the fingerprint text (stored as an HDF5
    // string attribute and compared on resume) and the shard output names.
    const std::string fp = job.fingerprint().dump();
    if (nlohmann::json::parse(fp) != job.fingerprint()) std::abort();
    (void)dit::jobs::shard_output(job.output, {3, 7, "--shard"});
    if (job.samples < 1 || job.batch_size < 1 || job.sampler.options.steps < 1) std::abort();
  });
  return 0;
}
