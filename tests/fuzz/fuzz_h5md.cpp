// libFuzzer target: an H5MD sample file as the engine reads it back: the resume path of
// `dit batch` (open for appending, job fingerprint, /samples/index, truncate to the complete
// rows; src/jobs/runner.cpp) and `dit merge` (src/jobs/merge.cpp: fingerprint JSON, every
// per-sample dataset read, written in index order to a new file). HDF5 opens files by name,
// and needs their real path, so the input is a file in a private folder (/dev/shm when there is
// one), where the merge output goes too.
#include <dit/h5md.h>
#include <dit/jobs.h>
#include <unistd.h>

#include <cstdio>
#include <dit/fs.h>

#include "fuzz_input.h"

namespace {

std::string out_dir() {
  static const std::string dir = [] {
    const dit::fs::path base =
        dit::fs::is_directory("/dev/shm") ? "/dev/shm" : dit::fs::temp_directory_path();
    auto d = base / ("dit-fuzz-h5md-" + std::to_string(::getpid()));
    dit::fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

// Mirrors what run_job does with an existing output before it resumes (runner.cpp).
void resume_reads(const std::string& path) {
  dit::h5md::File file(path, dit::h5md::Mode::Append);
  (void)file.string_attribute("parameters/job", "fingerprint");
  const int64_t complete = file.rows("samples/index");
  file.truncate_rows("", complete);
  if (complete > 0) (void)file.read("samples/index");
}

// HDF5 needs the real path of a file (a memfd's /proc/self/fd/N has none): the input is
// written to a regular file in the private folder.
std::string input_file(const uint8_t* data, size_t size) {
  const std::string path = out_dir() + "/input.h5";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in = input_file(data, size);
  dit_fuzz::expect_dit_errors_only(in, [&] { resume_reads(in); });
  input_file(data, size);  // a fresh copy: resume_reads may have shrunk datasets
  const std::string out = out_dir() + "/merged.h5";
  dit_fuzz::expect_dit_errors_only(in, [&] { dit::jobs::merge_outputs({in}, out); });
  dit::fs::remove(out);
  dit::fs::remove(out + ".tmp");
  return 0;
}
