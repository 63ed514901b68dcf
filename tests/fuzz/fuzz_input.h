#pragma once
// Shared by the fuzz targets: our parsers read paths, so each input becomes an in-memory file
// (memfd, no disk I/O) named /proc/self/fd/N. A dit::Error is the expected answer to bad
// input; any other exception escaping a parser is a finding (the CLI would print it without
// naming the file), so it aborts like a crash.
#include <dit/error.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace dit_fuzz {

class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("dit-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Runs fn; dit::Error must name the file. Anything else aborts.
template <typename Fn>
void expect_dit_errors_only(const std::string& path, Fn&& fn) {
  try {
    fn();
  } catch (const dit::Error& e) {
    if (std::string(e.what()).find(path) == std::string::npos) {
      std::fprintf(stderr, "dit::Error does not name the file %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a dit::Error: %s\n", e.what());
    std::abort();
  }
}

}  // namespace dit_fuzz
