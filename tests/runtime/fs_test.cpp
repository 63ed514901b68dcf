// dit::fs (include/dit/fs.h): std::filesystem's meanings on POSIX calls, run with every
// std::filesystem symbol of libstdc++ interposed by stubs that abort (this test program links
// tests/runtime/make_fs_interposer.sh's library ahead of libstdc++, as a program linked to a
// PyTorch wheel has libtorch_cpu.so ahead of it). The engine's file writers run here too.
#include <dit/error.h>
#include <dit/files.h>
#include <dit/fs.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int dit_fs_interposer_count(void);

namespace fs = dit::fs;

namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dit_fs_test." + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p.string(), std::ios::binary) << bytes;
  }
  fs::path dir_;
};

std::string read(const fs::path& p) {
  std::ifstream in(p.string(), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// The stand-in for a wheel's libtorch is really in front of libstdc++: a std::filesystem call
// from this program lands in a stub and aborts (so every other test here would die if the engine
// called std::filesystem anywhere on its path).
TEST(FsInterposition, StdFilesystemSymbolsResolveToTheAbortingStubs) {
  ASSERT_GT(dit_fs_interposer_count(), 200);  // libstdc++ 12 exports about 276
  const char* name = "_ZNSt10filesystem10remove_allERKNS_7__cxx114pathE";
  void* sym = ::dlsym(RTLD_DEFAULT, name);
  ASSERT_NE(sym, nullptr);
  Dl_info info{};
  ASSERT_NE(::dladdr(sym, &info), 0);
  EXPECT_EQ(std::string(info.dli_fname).find("libstdc++"), std::string::npos) << info.dli_fname;
  EXPECT_NE(std::string(info.dli_fname).find("dit_fs_interposer"), std::string::npos) << info.dli_fname;
  EXPECT_DEATH(reinterpret_cast<void (*)()>(sym)(), "interposed std::filesystem symbol called");
}

TEST(FsPath, DecomposesAsStdFilesystem) {
  const fs::path p("dir/sub/a.tar.gz");
  EXPECT_EQ(p.filename(), "a.tar.gz");
  EXPECT_EQ(p.stem(), "a.tar");
  EXPECT_EQ(p.extension(), ".gz");
  EXPECT_EQ(p.parent_path(), "dir/sub");
  EXPECT_EQ(fs::path("a").parent_path(), "");
  EXPECT_EQ(fs::path("/a").parent_path(), "/");
  EXPECT_EQ(fs::path("dir/").filename(), "");
  EXPECT_EQ(fs::path(".profile").extension(), "");
  EXPECT_EQ(fs::path(".profile").stem(), ".profile");
  EXPECT_EQ(fs::path("..").extension(), "");
  EXPECT_EQ(fs::path("x/noext").extension(), "");
  EXPECT_EQ(fs::path("a") / "b", "a/b");
  EXPECT_EQ(fs::path("a/") / "b", "a/b");
  EXPECT_EQ(fs::path("a") / "/abs", "/abs");
  EXPECT_EQ(fs::path("") / "b", "b");
  fs::path q("out/model.pt");
  EXPECT_EQ(q.replace_extension(".safetensors"), "out/model.safetensors");
  EXPECT_EQ(q.replace_extension("h5"), "out/model.h5");
  EXPECT_EQ(q.replace_extension(), "out/model");
  const std::string s = fs::path("x") / "y.png";  // converts like std::filesystem::path
  EXPECT_EQ(s, "x/y.png");
  std::ostringstream os;
  os << fs::path("p q");
  EXPECT_EQ(os.str(), "p q");
}

TEST_F(FsTest, CreatesQueriesAndRemovesTrees) {
  const auto deep = dir_ / "a" / "b" / "c";
  EXPECT_TRUE(fs::create_directories(deep));
  EXPECT_FALSE(fs::create_directories(deep));  // already there
  EXPECT_TRUE(fs::is_directory(deep));
  write(deep / "f.bin", "12345");
  EXPECT_TRUE(fs::exists(deep / "f.bin"));
  EXPECT_TRUE(fs::is_regular_file(deep / "f.bin"));
  EXPECT_FALSE(fs::is_directory(deep / "f.bin"));
  EXPECT_EQ(fs::file_size(deep / "f.bin"), 5u);
  std::error_code ec;
  EXPECT_EQ(fs::file_size(dir_ / "missing", ec), static_cast<std::uintmax_t>(-1));
  EXPECT_TRUE(ec);
  EXPECT_THROW(fs::file_size(dir_ / "missing"), dit::Error);

  // A file in the way of create_directories is an error naming the path.
  try {
    fs::create_directories(deep / "f.bin" / "x");
    FAIL() << "expected an error";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.bin"), std::string::npos) << e.what();
  }
  fs::create_directories(deep / "f.bin" / "x", ec);
  EXPECT_EQ(ec, std::errc::not_a_directory);

  // remove_all does not follow a symlink out of the tree.
  const auto outside = dir_ / "outside";
  fs::create_directories(outside);
  write(outside / "keep", "k");
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ / "a" / "link").c_str()), 0);
  EXPECT_EQ(fs::remove_all(dir_ / "a"), 5u);  // b, c, f.bin, link and a itself
  EXPECT_FALSE(fs::exists(dir_ / "a"));
  EXPECT_EQ(read(outside / "keep"), "k");
  EXPECT_EQ(fs::remove_all(dir_ / "a"), 0u);

  EXPECT_FALSE(fs::remove(dir_ / "nothing"));
  EXPECT_TRUE(fs::remove(outside / "keep"));
  EXPECT_TRUE(fs::remove(outside));
  EXPECT_FALSE(fs::exists(outside));
}

TEST_F(FsTest, ListsCopiesRenamesAndChangesPermissions) {
  for (const char* n : {"c.txt", "a.txt", "b.dat"}) write(dir_ / n, n);
  fs::create_directories(dir_ / "sub");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) {
    names.push_back(e.path().filename().string());
    EXPECT_EQ(e.is_directory(), names.back() == "sub");
    EXPECT_EQ(e.is_regular_file(), names.back() != "sub");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a.txt", "b.dat", "c.txt", "sub"}));
  std::error_code ec;
  EXPECT_EQ(fs::directory_iterator(dir_ / "missing", ec).size(), 0u);
  EXPECT_TRUE(ec);
  EXPECT_THROW(fs::directory_iterator(dir_ / "missing"), dit::Error);

  EXPECT_TRUE(fs::copy_file(dir_ / "a.txt", dir_ / "sub" / "a.txt"));
  EXPECT_EQ(read(dir_ / "sub" / "a.txt"), "a.txt");
  EXPECT_THROW(fs::copy_file(dir_ / "b.dat", dir_ / "sub" / "a.txt"), dit::Error);
  EXPECT_FALSE(fs::copy_file(dir_ / "b.dat", dir_ / "sub" / "a.txt", fs::copy_options::skip_existing));
  EXPECT_TRUE(fs::copy_file(dir_ / "b.dat", dir_ / "sub" / "a.txt", fs::copy_options::overwrite_existing));
  EXPECT_EQ(read(dir_ / "sub" / "a.txt"), "b.dat");

  fs::rename(dir_ / "c.txt", dir_ / "d.txt");
  EXPECT_FALSE(fs::exists(dir_ / "c.txt"));
  EXPECT_EQ(read(dir_ / "d.txt"), "c.txt");
  EXPECT_THROW(fs::rename(dir_ / "c.txt", dir_ / "e.txt"), dit::Error);

  fs::permissions(dir_ / "d.txt", fs::perms::owner_read);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "d.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  fs::permissions(dir_ / "d.txt", fs::perms::owner_write | fs::perms::group_read, fs::perm_options::add);
  ASSERT_EQ(::stat((dir_ / "d.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  fs::permissions(dir_ / "d.txt", fs::perms::group_read, fs::perm_options::remove);
  ASSERT_EQ(::stat((dir_ / "d.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_EQ(::symlink("d.txt", (dir_ / "ln").c_str()), 0);
  EXPECT_EQ(fs::read_symlink(dir_ / "ln"), "d.txt");
  EXPECT_THROW(fs::read_symlink(dir_ / "d.txt"), dit::Error);
  EXPECT_TRUE(fs::absolute("rel").is_absolute());
  EXPECT_EQ(fs::absolute("/x/y"), "/x/y");
}

// The engine's writers run their whole path (temporary, fsync, rename, clean-up) with
// std::filesystem poisoned.
TEST_F(FsTest, AtomicWritesRunWithoutStdFilesystem) {
  const auto out = dir_ / "nested" / "file.bin";
  fs::create_directories(out.parent_path());
  dit::write_file_atomic(out, "payload");
  EXPECT_EQ(read(out), "payload");
  EXPECT_EQ(fs::directory_iterator(out.parent_path()).size(), 1u);  // no temporary left
  EXPECT_THROW(dit::write_file_atomic((dir_ / "no" / "such" / "dir" / "f").string(), "x"), dit::Error);
}
