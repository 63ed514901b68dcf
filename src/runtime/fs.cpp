// File-system helpers on POSIX calls (include/dit/fs.h): why the engine has no std::filesystem.
#include <dirent.h>
#include <dit/error.h>
#include <dit/fs.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ostream>

namespace dit::fs {

namespace {

[[noreturn]] void fail(const char* what, const path& p, int err) {
  throw Error(fmt::format("{}: {}: {}", p.string(), what, std::strerror(err)));
}

// One stat; false with errno set when it fails.
bool stat_of(const path& p, struct stat& st, bool follow = true) {
  return (follow ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st)) == 0;
}

std::size_t filename_start(const std::string& s) {
  const auto slash = s.find_last_of('/');
  return slash == std::string::npos ? 0 : slash + 1;
}

// The extension's '.' within the filename, or npos ("." , ".." and ".profile" have none).
std::size_t extension_dot(const std::string& s) {
  const auto start = filename_start(s);
  const auto dot = s.find_last_of('.');
  if (dot == std::string::npos || dot <= start) return std::string::npos;
  const auto name = s.substr(start);
  if (name == "." || name == "..") return std::string::npos;
  return dot;
}

}  // namespace

path path::filename() const { return path(s_.substr(filename_start(s_))); }

path path::parent_path() const {
  const auto slash = s_.find_last_of('/');
  if (slash == std::string::npos) return path();
  auto end = slash;
  while (end > 0 && s_[end - 1] == '/') --end;  // "a//b" -> "a"
  return end == 0 ? path("/") : path(s_.substr(0, end));
}

path path::stem() const {
  const auto start = filename_start(s_);
  const auto dot = extension_dot(s_);
  return path(s_.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
}

path path::extension() const {
  const auto dot = extension_dot(s_);
  return dot == std::string::npos ? path() : path(s_.substr(dot));
}

path& path::replace_extension(const path& ext) {
  const auto dot = extension_dot(s_);
  if (dot != std::string::npos) s_.erase(dot);
  if (!ext.empty()) {
    if (ext.s_[0] != '.') s_ += '.';
    s_ += ext.s_;
  }
  return *this;
}

path& path::operator/=(const path& rhs) {
  if (rhs.is_absolute() || s_.empty()) {
    s_ = rhs.s_;
  } else if (!rhs.empty()) {
    if (s_.back() != '/') s_ += '/';
    s_ += rhs.s_;
  } else if (s_.back() != '/') {
    s_ += '/';  // as std::filesystem: p / "" appends a separator
  }
  return *this;
}

std::ostream& operator<<(std::ostream& os, const path& p) { return os << p.string(); }

bool exists(const path& p) {
  struct stat st {};
  if (stat_of(p, st)) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  fail("cannot stat", p, errno);
}
bool exists(const path& p, std::error_code& ec) noexcept {
  struct stat st {};
  ec.clear();
  if (stat_of(p, st)) return true;
  if (errno != ENOENT && errno != ENOTDIR) ec = std::error_code(errno, std::generic_category());
  return false;
}

bool is_directory(const path& p) {
  struct stat st {};
  return stat_of(p, st) && S_ISDIR(st.st_mode);
}
bool is_directory(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  return is_directory(p);
}
bool is_regular_file(const path& p) {
  struct stat st {};
  return stat_of(p, st) && S_ISREG(st.st_mode);
}
bool is_regular_file(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  return is_regular_file(p);
}

std::uintmax_t file_size(const path& p) {
  struct stat st {};
  if (!stat_of(p, st)) fail("cannot read the file size", p, errno);
  if (S_ISDIR(st.st_mode)) fail("cannot read the file size", p, EISDIR);
  return static_cast<std::uintmax_t>(st.st_size);
}
std::uintmax_t file_size(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  struct stat st {};
  if (!stat_of(p, st)) {
    ec = std::error_code(errno, std::generic_category());
    return static_cast<std::uintmax_t>(-1);
  }
  return static_cast<std::uintmax_t>(st.st_size);
}

namespace {

// mkdir -p: 0, or the errno of the component that failed (ENOTDIR: it exists, not a directory).
int make_directories(const path& p, bool& created) {
  created = false;
  if (p.empty() || is_directory(p)) return 0;
  const auto parent = p.parent_path();
  if (!parent.empty() && parent != p) {
    bool ignored = false;
    if (const int err = make_directories(parent, ignored)) return err;
  }
  if (::mkdir(p.c_str(), 0777) == 0) return created = true, 0;
  const int err = errno;
  if (err == EEXIST) return is_directory(p) ? 0 : ENOTDIR;  // made meanwhile, or a file
  return err;
}

}  // namespace

bool create_directories(const path& p) {
  bool created = false;
  if (const int err = make_directories(p, created)) fail("cannot create the directory", p, err);
  return created;
}
bool create_directories(const path& p, std::error_code& ec) noexcept {
  bool created = false;
  const int err = make_directories(p, created);
  ec = err ? std::error_code(err, std::generic_category()) : std::error_code();
  return created;
}

bool remove(const path& p) {
  std::error_code ec;
  const bool removed = remove(p, ec);
  if (ec) fail("cannot remove", p, ec.value());
  return removed;
}
bool remove(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  struct stat st {};
  if (!stat_of(p, st, false)) {
    if (errno != ENOENT && errno != ENOTDIR) ec = std::error_code(errno, std::generic_category());
    return false;
  }
  const int rc = S_ISDIR(st.st_mode) ? ::rmdir(p.c_str()) : ::unlink(p.c_str());
  if (rc != 0) {
    if (errno != ENOENT) ec = std::error_code(errno, std::generic_category());
    return false;
  }
  return true;
}

std::uintmax_t remove_all(const path& p) {
  struct stat st {};
  if (!stat_of(p, st, /*follow=*/false)) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    fail("cannot stat", p, errno);
  }
  std::uintmax_t n = 0;
  if (S_ISDIR(st.st_mode)) {
    for (const auto& e : directory_iterator(p)) n += remove_all(e.path());
  }
  if (remove(p)) ++n;
  return n;
}
std::uintmax_t remove_all(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  try {
    return remove_all(p);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  } catch (const Error&) {
    ec = std::make_error_code(std::errc::io_error);  // the message named the entry; ec the kind
  }
  return static_cast<std::uintmax_t>(-1);
}

void rename(const path& from, const path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw Error(fmt::format("{}: cannot rename to {}: {}", from.string(), to.string(), std::strerror(errno)));
}

bool copy_file(const path& from, const path& to, copy_options options) {
  struct stat st {};
  if (!stat_of(from, st) || !S_ISREG(st.st_mode)) fail("cannot copy: not a regular file", from, errno ? errno : EINVAL);
  if (exists(to)) {
    if (options == copy_options::skip_existing) return false;
    if (options != copy_options::overwrite_existing) fail("cannot copy over an existing file", to, EEXIST);
  }
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail("cannot open", from, errno);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    fail("cannot create", to, err);
  }
  char buf[1 << 16];
  for (;;) {
    const ssize_t got = ::read(in, buf, sizeof buf);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(in), ::close(out);
      fail("cannot read", from, err);
    }
    for (ssize_t done = 0; done < got;) {
      const ssize_t w = ::write(out, buf + done, static_cast<size_t>(got - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(in), ::close(out);
        fail("cannot write", to, err);
      }
      done += w;
    }
  }
  ::close(in);
  if (::fchmod(out, st.st_mode & 07777) != 0 || ::close(out) != 0) fail("cannot finish", to, errno);
  return true;
}

void permissions(const path& p, perms prms, perm_options opts) {
  struct stat st {};
  if (!stat_of(p, st)) fail("cannot stat", p, errno);
  auto mode = static_cast<mode_t>(st.st_mode & 07777);
  const auto bits = static_cast<mode_t>(prms);
  switch (opts) {
    case perm_options::replace: mode = bits; break;
    case perm_options::add: mode |= bits; break;
    case perm_options::remove: mode &= ~bits; break;
  }
  if (::chmod(p.c_str(), mode) != 0) fail("cannot change permissions", p, errno);
}

path temp_directory_path() {
  const char* env = std::getenv("TMPDIR");
  if (env && *env && is_directory(env)) return path(env);
  return path("/tmp");
}

path current_path() {
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf)) fail("cannot read the working directory", path("."), errno);
  return path(buf);
}

path absolute(const path& p) { return p.is_absolute() ? p : current_path() / p; }

path read_symlink(const path& p) {
  std::error_code ec;
  auto target = read_symlink(p, ec);
  if (ec) fail("cannot read the symlink", p, ec.value());
  return target;
}
path read_symlink(const path& p, std::error_code& ec) noexcept {
  ec.clear();
  std::string buf(256, '\0');
  for (;;) {
    const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
    if (n < 0) {
      ec = std::error_code(errno, std::generic_category());
      return path();
    }
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return path(buf);
    }
    buf.resize(buf.size() * 2);
  }
}

directory_iterator::directory_iterator(const path& dir) {
  std::error_code ec;
  *this = directory_iterator(dir, ec);
  if (ec) fail("cannot list the directory", dir, ec.value());
}

directory_iterator::directory_iterator(const path& dir, std::error_code& ec) noexcept {
  ec.clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    ec = std::error_code(errno, std::generic_category());
    return;
  }
  std::vector<std::string> names;
  try {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    entries_.reserve(names.size());
    for (const auto& n : names) entries_.emplace_back(dir / n);
  } catch (...) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    entries_.clear();
  }
  ::closedir(d);
}

}  // namespace dit::fs
