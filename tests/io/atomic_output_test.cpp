// dit::AtomicOutput and write_file_atomic (dit/files.h): nothing half-written, no temporaries
// left behind, errors that name the file.
#include <dit/error.h>
#include <dit/files.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dit/fs.h>
#include <fstream>
#include <string>
#include <vector>

#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using dit::test::read_bytes;
using dit::test::temp_leftovers;
using dit::test::write_bytes;

class AtomicOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("dit_atomic_output_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  std::string dir_;
};

TEST_F(AtomicOutput, CommitRenamesTheTemporary) {
  const std::string p = path("out.bin");
  dit::AtomicOutput out(p);
  EXPECT_EQ(out.path(), p);
  EXPECT_EQ(fs::path(out.temp_path()).parent_path(), fs::path(p).parent_path());  // same directory
  EXPECT_NE(out.temp_path(), p);
  EXPECT_FALSE(fs::exists(out.temp_path()));  // nothing is created before the writer runs
  write_bytes(out.temp_path(), "payload");
  EXPECT_FALSE(fs::exists(p));
  out.commit();
  EXPECT_TRUE(out.committed());
  EXPECT_EQ(read_bytes(p), "payload");
  EXPECT_FALSE(fs::exists(out.temp_path()));
  EXPECT_THROW(out.commit(), dit::Error);  // once only
  EXPECT_EQ(files(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicOutput, TemporariesAreUnique) {
  const std::string p = path("same.bin");
  dit::AtomicOutput a(p), b(p);
  EXPECT_NE(a.temp_path(), b.temp_path());
  EXPECT_NE(a.temp_path().find(std::to_string(::getpid())), std::string::npos) << a.temp_path();
  write_bytes(a.temp_path(), "a");
  write_bytes(b.temp_path(), "b");
  b.commit();
  a.commit();  // the last commit wins, whole
  EXPECT_EQ(read_bytes(p), "a");
  EXPECT_TRUE(temp_leftovers(p).empty());
}

TEST_F(AtomicOutput, DestructionWithoutCommitLeavesNothing) {
  const std::string p = path("never.bin");
  std::string temp;
  {
    dit::AtomicOutput out(p);
    temp = out.temp_path();
    write_bytes(temp, "half-written");
    ASSERT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(files().empty());
  {  // nor when nothing was written at all, or when the writer threw
    try {
      dit::AtomicOutput out(p);
      write_bytes(out.temp_path(), "x");
      throw std::runtime_error("writer failed");
    } catch (const std::runtime_error&) {
    }
  }
  { dit::AtomicOutput unused(p); }
  EXPECT_TRUE(files().empty());
}

TEST_F(AtomicOutput, MovedFromDoesNotRemoveTheTemporary) {
  const std::string p = path("moved.bin");
  dit::AtomicOutput a(p);
  write_bytes(a.temp_path(), "moved");
  dit::AtomicOutput b(std::move(a));
  { dit::AtomicOutput gone = std::move(b); gone.commit(); }
  EXPECT_EQ(read_bytes(p), "moved");
  EXPECT_TRUE(temp_leftovers(p).empty());
}

TEST_F(AtomicOutput, ExistingFileIsReplacedOnlyOnCommit) {
  const std::string p = path("keep.txt");
  write_bytes(p, "old");
  {
    dit::AtomicOutput out(p);
    write_bytes(out.temp_path(), "new but abandoned");
    EXPECT_EQ(read_bytes(p), "old");
  }
  EXPECT_EQ(read_bytes(p), "old");
  dit::AtomicOutput out(p);
  write_bytes(out.temp_path(), "new");
  EXPECT_EQ(read_bytes(p), "old");
  out.commit();
  EXPECT_EQ(read_bytes(p), "new");
  EXPECT_EQ(files(), std::vector<std::string>{"keep.txt"});
}

TEST_F(AtomicOutput, WriteFileAtomic) {
  const std::string p = path("report.json");
  dit::write_file_atomic(p, "{}\n");
  EXPECT_EQ(read_bytes(p), "{}\n");
  dit::write_file_atomic(p, std::string(1 << 20, 'x'));  // replaces it whole
  EXPECT_EQ(read_bytes(p), std::string(1 << 20, 'x'));
  dit::write_file_atomic(p, "");
  EXPECT_EQ(read_bytes(p), "");
  EXPECT_EQ(files(), std::vector<std::string>{"report.json"});
}

// Each failure throws dit::Error naming the output path, and leaves no file and no temporary.
void expect_write_error(const std::string& p, const std::string& reason) {
  SCOPED_TRACE(p);
  try {
    dit::write_file_atomic(p, "data");
    ADD_FAILURE() << "no error writing " << p;
  } catch (const dit::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(p), std::string::npos) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(temp_leftovers(p).empty());
}

TEST_F(AtomicOutput, FailuresNameThePath) {
  expect_write_error(path("no_such_dir/x.json"), "No such file or directory");
  write_bytes(path("a_file"), "");
  expect_write_error(path("a_file/x.json"), "Not a directory");
  // A directory where the file should go: the rename fails, the temporary is removed.
  fs::create_directories(path("is_a_dir/inner"));
  try {
    dit::write_file_atomic(path("is_a_dir"), "data");
    ADD_FAILURE() << "renamed a file over a non-empty directory";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path("is_a_dir")), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(path("is_a_dir/inner")));
  EXPECT_TRUE(temp_leftovers(path("is_a_dir")).empty());
  // commit() without a temporary (the writer never created it).
  dit::AtomicOutput out(path("never_written.bin"));
  try {
    out.commit();
    ADD_FAILURE() << "committed a missing temporary";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path("never_written.bin")), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("never_written.bin")));
}

TEST_F(AtomicOutput, UnwritableDirectory) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  const std::string ro = path("read_only");
  fs::create_directories(ro);
  write_bytes(ro + "/x.json", "old");
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  try {
    dit::write_file_atomic(ro + "/x.json", "new");
    ADD_FAILURE() << "wrote into a read-only directory";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(ro + "/x.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
  fs::permissions(ro, fs::perms::owner_all);
  EXPECT_EQ(read_bytes(ro + "/x.json"), "old");
  EXPECT_TRUE(temp_leftovers(ro + "/x.json").empty());
}

}  // namespace
