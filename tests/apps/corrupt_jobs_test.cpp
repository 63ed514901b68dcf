// The corrupted-input suite for batch jobs, through the CLI: damaged job files given to
// `dit batch`, and damaged H5MD shard files given to `dit merge`. Each variant must give one
// line "dit: error: ..." naming the file and what is wrong, a non-zero exit, and no output
// (nor its .tmp / .lock) left behind. The shards are real: written by `dit batch --shard`.
#ifdef DIT_HAVE_JOBS
#include <dit/h5md.h>
#include <hdf5.h>

#include <functional>
#include <limits>

#include "corrupt_inputs.h"

namespace {

using dit::test::CorruptInputs;
using dit::test::read_bytes;
using dit::test::Result;
using dit::test::run;
using dit::test::Variant;
using dit::test::write_bytes;
namespace fs = dit::fs;

// A small image job (the bundled model): 8 samples in batches of 4, one sampler step.
std::string job_text(const std::string& output, const std::string& extra_top = "",
                     const std::string& sampler = "name = \"euler\"\nsteps = 1\n",
                     const std::string& image = "classes = [2, 5]\n") {
  return "domain = \"image\"\nsamples = 8\nseed = 11\nbatch_size = 4\nthreads = 1\noutput = \"" +
         output + "\"\n" + extra_top + "[sampler]\n" + sampler + "[image]\n" + image;
}

// ---- job files: dit batch JOB --------------------------------------------------------------

TEST_F(CorruptInputs, JobFiles) {
  const std::string out = dir_ + "/out.h5";
  const std::string good = job_text(out);
  std::string flipped = good;  // '=' of "samples = 8" -> '<' (one bit flip pattern: 0x3d^0x01)
  flipped[flipped.find("samples =") + 8] ^= 0x01;
  std::string nul = good;
  nul[nul.find("seed")] = '\0';
  const std::string model = read_bytes(std::string(DIT_TEST_FIXTURES) + "/dit_tiny_weights.safetensors");
  const auto top = [&](const std::string& line) { return job_text(out, line); };
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const auto sampler = [&](const std::string& lines) { return job_text(out, "", lines); };
  const std::vector<Variant> variants = {
      {"empty", "", {"domain: missing"}},
      {"cut in a string", good.substr(0, good.find("image") + 3), {":1:"}},
      {"cut in a table header", good.substr(0, good.find("[sampler]") + 5), {}},
      {"bit flip in '='", flipped, {}},
      {"NUL byte", nul, {}},
      {"a model file", model, {}},
      {"invalid UTF-8 in a string", replace("\"image\"", "\"im\xff\xfe\""), {}},
      {"duplicate key", replace("seed = 11\n", "seed = 11\nseed = 12\n"), {"seed"}},
      {"samples a string", replace("samples = 8", "samples = \"eight\""), {"samples: must be an integer"}},
      {"samples a float", replace("samples = 8", "samples = 8.5"), {"samples: must be an integer"}},
      {"samples zero", replace("samples = 8", "samples = 0"), {"samples: must be in 1.."}},
      {"samples negative", replace("samples = 8", "samples = -8"), {"samples: must be in 1.."}},
      {"samples absurd", replace("samples = 8", "samples = 9223372036854775807"), {"samples: must be in 1.."}},
      {"samples missing", replace("samples = 8\n", ""), {"samples: missing"}},
      {"seed negative", replace("seed = 11", "seed = -1"), {"seed: must be >= 0"}},
      {"seed NaN", replace("seed = 11", "seed = nan"), {"seed: must be an integer"}},
      {"batch_size zero", replace("batch_size = 4", "batch_size = 0"), {"batch_size: must be in 1..65536"}},
      {"batch_size absurd", replace("batch_size = 4", "batch_size = 100000000"), {"batch_size: must be in 1..65536"}},
      {"threads negative", replace("threads = 1", "threads = -2"), {"threads: must be >= 0"}},
      {"device unknown", top("device = \"tpu\"\n"), {"device tpu: expected cpu, cuda, cuda:N or auto"}},
      {"dtype unknown", top("dtype = \"int8\"\n"), {"dtype: must be fp32, bf16 or fp16"}},
      {"dtype fp16 on the CPU", top("dtype = \"fp16\"\n"), {"dtype fp16: runs on a GPU only"}},
      {"device a number", top("device = 3\n"), {"device: must be a string"}},
      // (this suite needs HDF5, which the GPU machine lacks: here there is never a GPU)
      {"device cuda without a GPU", top("device = \"cuda\"\n"), {"device cuda: "}},
      {"output empty", replace("output = \"" + out + "\"", "output = \"\""), {"output: must not be empty"}},
      {"output a number", replace("output = \"" + out + "\"", "output = 5"), {"output: must be a string"}},
      {"unknown domain", replace("\"image\"", "\"chemistry\""), {"unknown domain 'chemistry'"}},
      {"unknown key", top("colour = 3\n"), {"colour: unknown key"}},
      {"sampler not a table", top("sampler = 5\n").substr(0, top("sampler = 5\n").find("[sampler]")),
       {"sampler: must be a table"}},
      {"steps zero", sampler("steps = 0\n"), {"[sampler] steps: must be in 1..100000"}},
      {"steps NaN", sampler("steps = nan\n"), {"[sampler] steps: must be an integer"}},
      {"cfg_scale NaN", sampler("cfg_scale = nan\n"), {"[sampler] cfg_scale: must be finite"}},
      {"cfg_scale +Inf", sampler("cfg_scale = inf\n"), {"[sampler] cfg_scale: must be finite"}},
      {"cfg_scale absurd", sampler("cfg_scale = 1e300\n"), {"[sampler] cfg_scale: must be in 0..100"}},
      {"cfg_interval reversed", sampler("cfg_interval = [0.9, 0.1]\n"), {"[sampler] cfg_interval"}},
      {"cfg_channels below -1", sampler("cfg_channels = -2\n"), {"[sampler] cfg_channels: must be -1"}},
      {"cfg_channels a float", sampler("cfg_channels = 3.5\n"), {"[sampler] cfg_channels: must be an integer"}},
      {"eta above 1", sampler("name = \"ddim\"\neta = 2.0\n"), {"[sampler] eta: must be in 0..1"}},
      {"cfg_interval of strings", sampler("cfg_interval = [\"a\", \"b\"]\n"), {"must be an array of numbers"}},
      {"shift negative (wrong units)", sampler("time_grid = \"shifted\"\nshift = -3.0\n"), {"[sampler] shift: must be > 0"}},
      {"unknown sampler", sampler("name = \"warp-drive\"\n"), {"[sampler] name", "warp-drive"}},
      {"unknown time grid", sampler("time_grid = \"spiral\"\n"), {"[sampler] time_grid", "spiral"}},
      {"unknown sampler key", sampler("stepz = 3\n"), {"[sampler] stepz: unknown key"}},
      {"class out of range", job_text(out, "", "steps = 1\n", "classes = [99]\n"), {"99"}},
      {"classes empty", job_text(out, "", "steps = 1\n", "classes = []\n"), {"classes"}},
      {"a directory", "", {"is a directory"}, true},
      {"absent", "", {"cannot open job file"}, false, true},
  };
  const std::string path = dir_ + "/job.toml";
  for (const auto& v : variants) {
    place(v, path);
    expect_clean_failure(v.name, "batch " + path + " -q", path, v.expect, {out, out + ".lock"});
  }
  // The undamaged job runs through the same command.
  write_bytes(path, good);
  const Result ok = run("batch " + path + " -q");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(out));
  std::cout << "[ corrupt  ] job files: " << variants.size() << " damaged variants\n";
  EXPECT_GE(variants.size(), 20u);
}

// ---- H5MD shard files: dit merge -o OUT SHARD... ----------------------------------------------

// Opens `path` read-write with the HDF5 C API for a damaging edit.
class Raw {
 public:
  explicit Raw(const std::string& path) : id_(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)) {
    EXPECT_GE(id_, 0) << path;
  }
  ~Raw() { H5Fclose(id_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;
  hid_t get() const { return id_; }
  void remove(const std::string& object) { EXPECT_GE(H5Ldelete(id_, object.c_str(), H5P_DEFAULT), 0) << object; }
  // Overwrites a whole dataset with values of the same count (converted to its stored type).
  void overwrite(const std::string& dataset, const torch::Tensor& values) {
    hid_t d = H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0) << dataset;
    auto v = values.contiguous();
    hid_t type = v.scalar_type() == torch::kFloat32 ? H5T_NATIVE_FLOAT
                 : v.scalar_type() == torch::kFloat64 ? H5T_NATIVE_DOUBLE
                                                     : H5T_NATIVE_INT64;
    EXPECT_GE(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data_ptr()), 0) << dataset;
    H5Dclose(d);
  }

 private:
  hid_t id_;
};

TEST_F(CorruptInputs, MergeShards) {
  const std::string job = dir_ + "/job.toml", stem = dir_ + "/m.h5";
  write_bytes(job, job_text(stem));
  for (const char* shard : {"0/2", "1/2"}) {
    const Result r = run("batch " + job + " -q --shard " + shard);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const std::string shard0 = dir_ + "/m.shard-0000-of-0002.h5", shard1 = dir_ + "/m.shard-0001-of-0002.h5";
  const std::string good = read_bytes(shard1);
  ASSERT_GT(good.size(), 1000u);
  // Another job's shard (seed 12): same datasets, different fingerprint.
  std::string other_job = job_text(dir_ + "/o.h5");
  other_job.replace(other_job.find("seed = 11"), 9, "seed = 12");
  write_bytes(dir_ + "/other.toml", other_job);
  ASSERT_EQ(run("batch " + dir_ + "/other.toml -q --shard 1/2").code, 0);
  const std::string other = read_bytes(dir_ + "/o.shard-0001-of-0002.h5");

  const std::string scratch = dir_ + "/scratch.h5";
  // A copy of the good shard 1, damaged by `edit` through dit::h5md or the HDF5 C API.
  const auto edited = [&](const std::function<void(const std::string&)>& edit) {
    write_bytes(scratch, good);
    edit(scratch);
    return read_bytes(scratch);
  };
  const auto fingerprint = [&](const std::string& text) {
    return edited([&](const std::string& p) {
      dit::h5md::File f(p, dit::h5md::Mode::Append);
      f.set_attribute("parameters/job", "fingerprint", text);
    });
  };
  dit::h5md::File reader(shard1, dit::h5md::Mode::Read);
  const std::string fp = *reader.string_attribute("parameters/job", "fingerprint");
  const auto index = reader.read("samples/index");
  const auto images = reader.read("images/value");
  const auto with_samples = [&](const std::string& value) {
    std::string s = fp;
    const auto at = s.find("\"samples\":") + 10;
    s.replace(at, s.find(',', at) - at, value);
    return fingerprint(s);
  };
  std::string flipped_sig = good, flipped_offsets = good;
  flipped_sig[1] ^= 0x20;      // "\x89HDF" signature
  flipped_offsets[13] ^= 0x0c;  // superblock: size of offsets 8 -> 4
  // A valid HDF5 file that is not H5MD, and one that is H5MD but not a batch output.
  const std::string plain = edited([&](const std::string& p) {
    fs::remove(p);
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
  });
  const std::vector<Variant> variants = {
      {"empty", "", {"not an HDF5 file"}},
      {"three bytes", "abc", {"not an HDF5 file"}},
      {"cut in half", good.substr(0, good.size() / 2), {}},
      {"last byte cut", good.substr(0, good.size() - 1), {}},
      {"cut to the superblock", good.substr(0, 96), {}},
      {"signature bit flip", flipped_sig, {"not an HDF5 file"}},
      {"superblock offsets flipped", flipped_offsets, {}},
      {"a job file", job_text(stem), {"not an HDF5 file"}},
      {"plain HDF5, not H5MD", plain, {"not an H5MD file"}},
      {"no job fingerprint", edited([](const std::string& p) {
         Raw r(p);
         EXPECT_GE(H5Adelete_by_name(r.get(), "parameters/job", "fingerprint", H5P_DEFAULT), 0);
       }), {"not a dit batch output"}},
      {"fingerprint not JSON", fingerprint("{\"samples\": 8, "), {"not valid job JSON"}},
      {"fingerprint samples a string", with_samples("\"8\""), {"not valid job JSON"}},
      {"fingerprint samples NaN", with_samples("NaN"), {"not valid job JSON"}},
      {"fingerprint samples negative", with_samples("-8"), {"outside 1.."}},
      {"fingerprint samples absurd", with_samples("1000000000000000"), {"outside 1.."}},
      {"another job's shard", other, {"different job"}},
      {"index missing", edited([](const std::string& p) { Raw(p).remove("samples/index"); }),
       {"samples/index", "does not exist"}},
      {"index as float64", edited([&](const std::string& p) {
         Raw(p).remove("samples/index");
         dit::h5md::File(p, dit::h5md::Mode::Append).append_rows("samples/index", index.to(torch::kFloat64), 1024);
       }), {"samples/index", "int64"}},
      {"index 2-d", edited([&](const std::string& p) {
         Raw(p).remove("samples/index");
         dit::h5md::File(p, dit::h5md::Mode::Append).append_rows("samples/index", index.unsqueeze(1), 1024);
       }), {"samples/index", "[N] int64"}},
      {"index out of range", edited([&](const std::string& p) { Raw(p).overwrite("samples/index", index + 100); }),
       {"out of range"}},
      {"index negative", edited([&](const std::string& p) { Raw(p).overwrite("samples/index", index - 100); }),
       {"out of range"}},
      {"duplicate samples (shard 0's)", read_bytes(shard0), {"is in both"}},
      {"seeds not the job's", edited([&](const std::string& p) {
         Raw(p).overwrite("samples/seed", torch::arange(index.numel(), torch::kInt64));
       }), {"samples/seed"}},
      {"images cut", edited([](const std::string& p) {
         dit::h5md::File(p, dit::h5md::Mode::Append).truncate_rows("images", 2);
       }), {"has 2 rows for the 4 samples"}},
      {"images with an extra row", edited([&](const std::string& p) {
         dit::h5md::File(p, dit::h5md::Mode::Append).append_rows("images/value", images.narrow(0, 0, 1));
       }), {"images/value", "rows"}},
      {"images as float64", edited([&](const std::string& p) {
         Raw(p).remove("images/value");
         dit::h5md::File(p, dit::h5md::Mode::Append).append_rows("images/value", images.to(torch::kFloat64));
       }), {"images/value", "Double"}},
      {"images missing", edited([](const std::string& p) { Raw(p).remove("images/value"); }),
       {"other datasets"}},
      {"NaN pixel in a valid sample", edited([&](const std::string& p) {
         auto v = images.clone();
         v[1][0][3][3] = std::numeric_limits<float>::quiet_NaN();
         Raw(p).overwrite("images/value", v);
       }), {"flagged valid", "NaN"}},
      {"+Inf pixel in a valid sample", edited([&](const std::string& p) {
         auto v = images.clone();
         v[0][0][0][0] = std::numeric_limits<float>::infinity();
         Raw(p).overwrite("images/value", v);
       }), {"flagged valid", "Inf"}},
      {"a directory", "", {}, true},
      {"absent", "", {}, false, true},
  };
  const std::string out = dir_ + "/merged.h5", damaged = dir_ + "/damaged.h5";
  for (const auto& v : variants) {
    place(v, damaged);
    // The damaged shard first: merge takes the job (fingerprint) from the first file.
    expect_clean_failure(v.name, "merge -o " + out + " " + damaged + " " + shard0, damaged, v.expect, {out});
  }
  // The undamaged shards merge through the same command.
  write_bytes(damaged, good);
  const Result ok = run("merge -o " + out + " " + damaged + " " + shard0);
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(out));
  std::cout << "[ corrupt  ] H5MD shards: " << variants.size() << " damaged variants\n";
  EXPECT_GE(variants.size(), 20u);
}

}  // namespace
#endif  // DIT_HAVE_JOBS
