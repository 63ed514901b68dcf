// Batch jobs: job files, the scheduler, shards from flags and environments, and whole runs of
// the image domain: shards + merge and resume give exactly the samples of one run, bit for bit.
#include <dit/error.h>
#include <dit/jobs.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <dit/fs.h>
#include <fstream>

#include "src/jobs/plan.h"
#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using namespace dit::jobs;

std::string error_of(const std::string& text) {
  try {
    parse_job(text, "job.toml");
  } catch (const dit::Error& e) {
    return e.what();
  }
  return "";
}

const std::string kMinimal = "domain = \"image\"\nsamples = 8\noutput = \"out.h5\"\n";

TEST(JobFile, ParsesEveryKey) {
  auto job = parse_job(kMinimal + R"(seed = 5
batch_size = 3
bucketing = false
threads = 1
[sampler]
name = "heun"
steps = 4
cfg_scale = 2.5
cfg_interval = [0.1, 0.9]
[image]
classes = [1, 2]
)", "job.toml");
  EXPECT_EQ(job.samples, 8);
  EXPECT_EQ(job.seed, 5u);
  EXPECT_EQ(job.batch_size, 3);
  EXPECT_FALSE(job.bucketing);
  EXPECT_EQ(job.sampler.name, "heun");
  EXPECT_EQ(job.sampler.options.steps, 4);
  EXPECT_DOUBLE_EQ(job.sampler.guidance.scale, 2.5);
  EXPECT_DOUBLE_EQ(job.sampler.guidance.t_hi, 0.9);
  EXPECT_EQ(job.domain_options["classes"], nlohmann::json({1, 2}));
  // The fingerprint ignores where the output goes and how many threads run it.
  auto other = parse_job(kMinimal + "seed = 5\nbatch_size = 3\nbucketing = false\nthreads = 2\n"
                         "[sampler]\nname = \"heun\"\nsteps = 4\ncfg_scale = 2.5\ncfg_interval = [0.1, 0.9]\n"
                         "[image]\nclasses = [1, 2]\n", "other.toml");
  EXPECT_EQ(job.fingerprint(), other.fingerprint());
}

TEST(JobFile, ErrorsNameTheFileAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"samples = 8\noutput = \"o.h5\"\n", "job.toml: domain: missing"},
      {"domain = \"protein\"\nsamples = 8\noutput = \"o.h5\"\n", "job.toml: domain: unknown domain 'protein'"},
      {kMinimal + "smaples = 3\n", "job.toml: smaples: unknown key"},
      {"domain = \"image\"\nsamples = 0\noutput = \"o.h5\"\n", "job.toml: samples: must be in 1..1000000000, got 0"},
      {"domain = \"image\"\nsamples = \"many\"\noutput = \"o.h5\"\n", "job.toml: samples: must be an integer"},
      {"domain = \"image\"\nsamples = 4\n", "job.toml: output: missing"},
      {kMinimal + "batch_size = 0\n", "job.toml: batch_size: must be in 1..65536, got 0"},
      {kMinimal + "seed = -1\n", "job.toml: seed: must be >= 0"},
      {kMinimal + "[sampler]\nname = \"nope\"\n", "job.toml: [sampler] name: sampler: unknown name \"nope\""},
      {kMinimal + "[sampler]\nsteps = 0\n", "job.toml: [sampler] steps: must be in 1..100000, got 0"},
      {kMinimal + "[sampler]\nstep = 4\n", "job.toml: [sampler] step: unknown key in [sampler]"},
      {kMinimal + "[sampler]\ncfg_interval = [0.9, 0.1]\n", "job.toml: [sampler] cfg_interval: must be"},
      {kMinimal + "[sampler]\ncfg_scale = nan\n", "job.toml: [sampler] cfg_scale: must be finite"},
      {kMinimal + "sampler = 3\n", "job.toml: sampler: must be a table"},
      {kMinimal + "samples = 9\n", "job.toml:4:"},  // duplicate key: a TOML error with its position
      {"domain = \"image\n", "job.toml:1:"},
  };
  for (const auto& [text, expected] : cases) {
    auto err = error_of(text);
    EXPECT_EQ(err.rfind(expected, 0), 0u) << "for:\n" << text << "got: " << err;
  }
}

TEST(Scheduler, BucketingPacksSimilarSizes) {
  std::vector<Request> reqs;
  const int64_t sizes[] = {40, 10, 38, 12, 11, 39, 9, 41};
  for (int64_t k = 0; k < 8; ++k) reqs.push_back({k, sizes[k]});
  auto plain = plan_batches(reqs, 4, 0, false);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0], (Batch{0, 1, 2, 3}));
  auto bucketed = plan_batches(reqs, 4, 0, true);
  ASSERT_EQ(bucketed.size(), 2u);
  EXPECT_EQ(bucketed[0], (Batch{6, 1, 4, 3}));  // the four small ones (9, 10, 11, 12)
  EXPECT_EQ(bucketed[1], (Batch{2, 5, 0, 7}));
  // A token budget: at most 100 padded tokens per batch.
  for (const auto& b : plan_batches(reqs, 8, 100, true)) {
    int64_t largest = 0;
    for (auto k : b) largest = std::max(largest, sizes[k]);
    EXPECT_LE(static_cast<int64_t>(b.size()) * largest, 100);
  }
  EXPECT_EQ(plan_batches(reqs, 4, 0, true), bucketed);  // deterministic
}

TEST(Scheduler, ShardsCoverThePlanOnce) {
  std::vector<Request> reqs;
  for (int64_t k = 0; k < 23; ++k) reqs.push_back({k, 16});
  auto plan = plan_batches(reqs, 4, 0, true);
  std::vector<int> seen(23, 0);
  for (int64_t i = 0; i < 3; ++i)
    for (const auto& b : shard_batches(plan, Shard{i, 3, "test"}))
      for (auto k : b) seen[k]++;
  for (int k = 0; k < 23; ++k) EXPECT_EQ(seen[k], 1) << k;
}

TEST(Shard, FromFlagSlurmAndMpi) {
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN",
                        "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE"})
    unsetenv(v);
  EXPECT_EQ(shard_from("").count, 1);
  auto s = shard_from("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "x", "1/", "-1/3", "1/3x", "/3"}) EXPECT_THROW(shard_from(bad), dit::Error) << bad;
  setenv("SLURM_ARRAY_TASK_ID", "12", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "10", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  s = shard_from("");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.source, "SLURM array");
  EXPECT_EQ(shard_from("0/2").index, 0);  // the flag wins
  unsetenv("SLURM_ARRAY_TASK_ID");
  setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  s = shard_from("");
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.source, "MPI");
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("SLURM_ARRAY_TASK_MIN");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  EXPECT_EQ(shard_output("runs/out.h5", Shard{2, 4, ""}), "runs/out.shard-0002-of-0004.h5");
  EXPECT_EQ(shard_output("runs.v1/out", Shard{0, 2, ""}), "runs.v1/out.shard-0000-of-0002");
  EXPECT_EQ(shard_output("out.h5", Shard{}), "out.h5");
}

// Small image jobs on the 28px test model (random weights: the bits are what matter).
class ImageJob : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dit_jobs_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Job job(const std::string& output, const std::string& extra = "") const {
    return parse_job(fmt::format("domain = \"image\"\nsamples = 10\nseed = 3\nbatch_size = 3\n"
                                 "threads = 1\nmodel = \"{}\"\noutput = \"{}\"\n{}"
                                 "[sampler]\nsteps = 2\ncfg_scale = 2.0\n[image]\nclasses = [1, 4, 7]\n",
                                 DIT_TEST_FIXTURES "/dit_fmnist_small_weights.safetensors",
                                 (dir_ / output).string(), extra),
                     "job.toml");
  }
  static RunReport run(const Job& j, Shard shard = {}) {
    RunOptions o;
    o.shard = shard;
    o.quiet = true;
    return run_job(j, o);
  }
  static torch::Tensor read(const fs::path& path, const std::string& name) {
    dit::h5md::File f(path.string(), dit::h5md::Mode::Read);
    return f.read(name);
  }
  fs::path dir_;
};

TEST_F(ImageJob, ShardsMergedEqualOneRunBitForBit) {
  auto whole = run(job("whole.h5"));
  EXPECT_EQ(whole.written, 10);
  std::vector<std::string> shards;
  for (int64_t i = 0; i < 3; ++i) {
    auto r = run(job("part.h5"), Shard{i, 3, "test"});
    shards.push_back(r.output);
  }
  const auto merged = (dir_ / "merged.h5").string();
  merge_outputs(shards, merged);
  for (const char* name : {"images/value", "images/label", "samples/index", "samples/seed", "samples/valid"})
    EXPECT_TRUE(torch::equal(read(dir_ / "whole.h5", name), read(merged, name))) << name;
  EXPECT_TRUE(torch::equal(read(merged, "images/label").narrow(0, 0, 4), torch::tensor({1, 4, 7, 1}, torch::kInt64)));
  auto seeds = read(merged, "samples/seed");  // uint64 bits, not clamped at 2^63 - 1
  for (int64_t k = 0; k < 10; ++k)
    EXPECT_EQ(static_cast<uint64_t>(seeds[k].item<int64_t>()), dit::mix_seed(3, static_cast<uint64_t>(k))) << k;
  std::string cmd = "/usr/bin/python3 " DIT_SOURCE_DIR "/tests/jobs/check_h5md.py " + merged + " --samples 10";
  EXPECT_EQ(std::system(cmd.c_str()), 0);

  // Missing and duplicated samples are refused, and nothing is written.
  const auto bad = (dir_ / "bad.h5").string();
  try {
    merge_outputs({shards[0], shards[2]}, bad);
    FAIL() << "merged with a shard missing";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("samples are missing (first: 3"), std::string::npos) << e.what();
  }
  try {
    merge_outputs({shards[0], shards[1], shards[2], shards[1]}, bad);
    FAIL() << "merged a shard twice";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is in both"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_TRUE(dit::test::temp_leftovers(bad).empty());
}

TEST_F(ImageJob, ResumeSkipsFinishedSamplesAndRefusesOtherJobs) {
  auto first = run(job("out.h5"));
  EXPECT_EQ(first.written, 10);
  auto again = run(job("out.h5"));
  EXPECT_EQ(again.written, 0);
  EXPECT_EQ(again.skipped, 10);
  // A resume from a file cut after its first two batches finishes with the same bits.
  const auto cut = (dir_ / "cut.h5").string();
  run(job("ref.h5"));
  {
    fs::copy_file(dir_ / "ref.h5", cut);
    dit::h5md::File f(cut, dit::h5md::Mode::Append);
    f.truncate_rows("", 6);
  }
  auto resumed = run(job("cut.h5"));
  EXPECT_EQ(resumed.skipped, 6);
  EXPECT_EQ(resumed.written, 4);
  EXPECT_TRUE(torch::equal(read(cut, "images/value"), read(dir_ / "ref.h5", "images/value")));
  try {
    run(job("out.h5", "max_batch_tokens = 1000\n"));
    FAIL() << "resumed a file of another job";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("written by a different job"), std::string::npos) << e.what();
  }
}

TEST_F(ImageJob, ASecondWriterIsRefused) {
  const auto out = (dir_ / "locked.h5").string();
  int fd = ::open((out + ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as another process running the job would
  try {
    run(job("locked.h5"));
    FAIL() << "ran while the output was locked";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("another process is writing this output"), std::string::npos) << e.what();
  }
  ::close(fd);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
