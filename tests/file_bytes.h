#pragma once
// Whole files as bytes, for the tests that damage inputs (tests/apps, tests/domains).
#include <fstream>
#include <iterator>
#include <string>

namespace dit::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace dit::test
