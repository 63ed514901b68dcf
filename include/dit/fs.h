#pragma once
// File-system helpers on plain POSIX calls. The engine never uses std::filesystem: PyTorch wheels
// (2.5 and later; pytorch/pytorch#133437) export the std::filesystem functions of a statically
// linked libstdc++ from libtorch_cpu.so, and a program linked to such a wheel binds its own
// std::filesystem calls to those copies and crashes (SIGSEGV in remove_all, seen on the GPU
// machine). This header has the subset the engine and its tests use, with std::filesystem's names
// and meanings, so code reads the same; tests/runtime/no_std_filesystem_test.cpp checks that no
// built library or program imports a std::filesystem symbol, and runs these helpers with every
// such symbol interposed by stubs that abort.
//
// Paths are plain byte strings (Linux). Errors are dit::Error naming the path and the errno text;
// the overloads taking a std::error_code never throw.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <system_error>
#include <vector>

namespace dit::fs {

class path {
 public:
  path() = default;
  path(std::string s) : s_(std::move(s)) {}  // NOLINT(google-explicit-constructor)
  path(const char* s) : s_(s) {}             // NOLINT(google-explicit-constructor)

  const std::string& string() const { return s_; }
  const std::string& native() const { return s_; }
  const char* c_str() const { return s_.c_str(); }
  operator std::string() const { return s_; }  // NOLINT: as std::filesystem::path does
  bool empty() const { return s_.empty(); }
  bool is_absolute() const { return !s_.empty() && s_[0] == '/'; }

  // "dir/a.tar.gz": filename "a.tar.gz", stem "a.tar", extension ".gz", parent_path "dir".
  // "a" has parent_path ""; "/a" has "/"; "dir/" has filename "". ".profile" has no extension.
  path filename() const;
  path parent_path() const;
  path stem() const;
  path extension() const;
  path& replace_extension(const path& ext = path());  // ext with or without its leading '.'

  // Joins with one '/'; an absolute right-hand side replaces the left, as in std::filesystem.
  path& operator/=(const path& rhs);
  friend path operator/(path lhs, const path& rhs) { return lhs /= rhs; }
  friend bool operator==(const path& a, const path& b) { return a.s_ == b.s_; }
  friend bool operator!=(const path& a, const path& b) { return a.s_ != b.s_; }
  friend bool operator<(const path& a, const path& b) { return a.s_ < b.s_; }

 private:
  std::string s_;
};
std::ostream& operator<<(std::ostream& os, const path& p);  // the path, unquoted

bool exists(const path& p);  // false for a dangling symlink, as stat() sees it
bool exists(const path& p, std::error_code& ec) noexcept;
bool is_directory(const path& p);
bool is_directory(const path& p, std::error_code& ec) noexcept;
bool is_regular_file(const path& p);
bool is_regular_file(const path& p, std::error_code& ec) noexcept;
std::uintmax_t file_size(const path& p);
std::uintmax_t file_size(const path& p, std::error_code& ec) noexcept;

// Creates p and its missing parents; true when it created the last one. Throws when a component
// exists and is not a directory, or mkdir fails.
bool create_directories(const path& p);
bool create_directories(const path& p, std::error_code& ec) noexcept;
// Removes a file, a symlink or an empty directory; false when there was nothing to remove.
bool remove(const path& p);
bool remove(const path& p, std::error_code& ec) noexcept;
// Removes p and everything under it (symlinks are removed, not followed); returns how many
// entries were removed, 0 when p did not exist.
std::uintmax_t remove_all(const path& p);
std::uintmax_t remove_all(const path& p, std::error_code& ec) noexcept;
void rename(const path& from, const path& to);

enum class copy_options { none, skip_existing, overwrite_existing };
// Copies a regular file's bytes and permission bits; without overwrite_existing an existing
// `to` is an error (skip_existing: returns false).
bool copy_file(const path& from, const path& to, copy_options options = copy_options::none);

enum class perms : unsigned {
  none = 0,
  owner_read = 0400, owner_write = 0200, owner_exec = 0100, owner_all = 0700,
  group_read = 040, group_write = 020, group_exec = 010, group_all = 070,
  others_read = 04, others_write = 02, others_exec = 01, others_all = 07,
  all = 0777,
};
constexpr perms operator|(perms a, perms b) { return perms(unsigned(a) | unsigned(b)); }
constexpr perms operator&(perms a, perms b) { return perms(unsigned(a) & unsigned(b)); }
enum class perm_options { replace, add, remove };
void permissions(const path& p, perms prms, perm_options opts = perm_options::replace);

path temp_directory_path();  // $TMPDIR when it names a directory, else /tmp
path current_path();
path absolute(const path& p);  // joined to the working directory; not resolved or normalised
path read_symlink(const path& p);
path read_symlink(const path& p, std::error_code& ec) noexcept;

class directory_entry {
 public:
  directory_entry() = default;
  explicit directory_entry(fs::path p) : path_(std::move(p)) {}
  const fs::path& path() const { return path_; }
  bool is_regular_file() const { return fs::is_regular_file(path_); }
  bool is_directory() const { return fs::is_directory(path_); }

 private:
  fs::path path_;
};

// The entries of one directory (no "." and ".."), sorted by name, read when constructed:
//   for (const auto& e : fs::directory_iterator(dir)) use(e.path());
// Unlike std::filesystem's, it is a range, not an iterator. Throws when dir cannot be read.
class directory_iterator {
 public:
  explicit directory_iterator(const path& dir);
  directory_iterator(const path& dir, std::error_code& ec) noexcept;
  std::vector<directory_entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<directory_entry>::const_iterator end() const { return entries_.end(); }
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<directory_entry> entries_;
};

}  // namespace dit::fs
