#include <dit/error.h>
#include <dit/runtime.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace dit {

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("{}: write failed: {}", path, std::strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename into place: {}", path, std::strerror(err)));
  }
}

std::string data_dir() {
  if (const char* env = std::getenv("DIT_DATA_DIR"); env && *env) return env;
  // An installed library finds its data beside it: <prefix>/lib/libdit.so -> <prefix>/share/dit.
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&data_dir), &info) && info.dli_fname) {
    auto installed = std::filesystem::path(info.dli_fname).parent_path().parent_path() / "share" / "dit";
    if (std::filesystem::exists(installed / "models")) return installed.string();
  }
  return DIT_DATA_DIR;  // the source tree's data/ (build tree use)
}

}  // namespace dit
