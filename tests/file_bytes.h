#pragma once
// Whole files as bytes, for the tests that damage inputs (tests/apps, tests/domains), and the
// leftovers of atomic writes.
#include <dit/fs.h>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace dit::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Temporaries of an atomic write of `path` (dit::AtomicOutput: "<path>.<pid>.<n>.tmp", and the
// older "<path>.tmp") still in its directory: empty after every write, failed or not.
inline std::vector<std::string> temp_leftovers(const std::string& path) {
  namespace fs = dit::fs;
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".";
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() >= prefix.size() + 3 && name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - 4, 4, ".tmp") == 0)
      found.push_back(e.path().string());
  }
  return found;
}

}  // namespace dit::test
