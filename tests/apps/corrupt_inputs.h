#pragma once
// The corrupted-input fixture shared by the CLI suites (corrupt_inputs_test.cpp,
// corrupt_jobs_test.cpp, train_resume_test.cpp): a private folder, placing a damaged variant,
// and the expectations every damaged input must meet through the dit CLI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <dit/fs.h>
#include <string>
#include <vector>

#include "run_cli.h"
#include "tests/file_bytes.h"

namespace dit::test {

namespace fs = dit::fs;

// A damaged input: its bytes, or (empty bytes and is_dir) a directory in its place.
struct Variant {
  std::string name;
  std::string bytes;
  std::vector<std::string> expect;  // substrings of the error line besides the path
  bool is_dir = false, absent = false;
};

class CorruptInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("dit_corrupt_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Places a variant at `path` (file bytes, a directory, or nothing).
  static void place(const Variant& v, const std::string& path) {
    fs::remove_all(path);
    if (v.is_dir)
      fs::create_directories(path);
    else if (!v.absent)
      write_bytes(path, v.bytes);
  }

  // Runs `args`; expects the one-line failure naming `file` and the variant's substrings, and
  // that none of `outputs` (nor their .tmp) exists afterwards.
  void expect_clean_failure(const std::string& what, const std::string& args,
                            const std::string& file, const std::vector<std::string>& expect,
                            const std::vector<std::string>& outputs) {
    SCOPED_TRACE(what + ": dit " + args);
    for (const auto& o : outputs) fs::remove_all(o);
    const Result r = run(args);
    ++tried_;
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(r.output.rfind("dit: error: ", 0), 0u) << r.output;
    if (!file.empty()) {
      EXPECT_NE(r.output.find(file), std::string::npos) << r.output;
    }
    for (const auto& e : expect) EXPECT_NE(r.output.find(e), std::string::npos) << e << "\n" << r.output;
    for (const auto& o : outputs) {
      EXPECT_FALSE(fs::exists(o)) << o;
      EXPECT_TRUE(dit::test::temp_leftovers(o).empty()) << o;
    }
  }

  std::string dir_;
  int tried_ = 0;
};

}  // namespace dit::test
