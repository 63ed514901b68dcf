#include <dit/error.h>
#include <dit/files.h>
#include <dit/runtime.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dit/fs.h>

namespace dit {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// The directory holding `path`, for the fsync that makes a rename durable.
std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::atomic<uint64_t> temp_counter{0};

}  // namespace

AtomicOutput::AtomicOutput(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error("AtomicOutput: empty output path");
  temp_ = fmt::format("{}.{}.{}.tmp", path_, ::getpid(), temp_counter.fetch_add(1));
  ::unlink(temp_.c_str());  // left by a crashed process that had our pid
}

AtomicOutput AtomicOutput::resumable(std::string path) {
  if (path.empty()) throw Error("AtomicOutput: empty output path");
  AtomicOutput out;
  out.temp_ = path + ".partial";
  out.path_ = std::move(path);
  return out;
}

AtomicOutput::~AtomicOutput() {
  if (!kept_) discard();
}

AtomicOutput::AtomicOutput(AtomicOutput&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::move(other.temp_)), committed_(other.committed_),
      kept_(other.kept_) {
  other.temp_.clear();
  other.committed_ = true;
}

AtomicOutput& AtomicOutput::operator=(AtomicOutput&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    temp_ = std::move(other.temp_);
    committed_ = other.committed_;
    kept_ = other.kept_;
    other.temp_.clear();
    other.committed_ = true;
  }
  return *this;
}

void AtomicOutput::discard() noexcept {
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicOutput::commit() {
  if (committed_) throw Error(fmt::format("{}: already committed", path_));
  const auto fail = [&](const std::string& what, int err) {
    discard();
    return Error(fmt::format("{}: {} '{}': {}", path_, what, temp_, errno_text(err)));
  };
  const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail("cannot open the temporary", errno);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    throw fail("cannot fsync", err);
  }
  ::close(fd);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw fail("cannot rename into place", errno);
  committed_ = true;
  // Make the rename itself durable; failure here does not make the file incomplete.
  const int dfd = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

OutputLock::OutputLock(const std::string& output) : path_(output + ".lock") {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(fmt::format("{}: cannot create the lock file {}: {}", output, path_, errno_text(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    throw Error(fmt::format("{}: another process is writing this output (lock {} is held)", output, path_));
  }
}

OutputLock::~OutputLock() {
  ::unlink(path_.c_str());
  ::close(fd_);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicOutput out(path);
  const int fd = ::open(out.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(fmt::format("{}: cannot write '{}': {}", path, out.temp_path(), errno_text(errno)));
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw Error(fmt::format("{}: write failed: {}", path, errno_text(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) throw Error(fmt::format("{}: write failed: {}", path, errno_text(errno)));
  out.commit();
}

std::string data_dir() {
  if (const char* env = std::getenv("DIT_DATA_DIR"); env && *env) return env;
  // An installed library finds its data beside it: <prefix>/lib/libdit.so -> <prefix>/share/dit.
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&data_dir), &info) && info.dli_fname) {
    auto installed = dit::fs::path(info.dli_fname).parent_path().parent_path() / "share" / "dit";
    if (dit::fs::exists(installed / "models")) return installed.string();
  }
  return DIT_DATA_DIR;  // the source tree's data/ (build tree use)
}

}  // namespace dit
