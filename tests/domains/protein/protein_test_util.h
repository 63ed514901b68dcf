#pragma once
// Fixtures of the protein tests: real chains from promod3's structure_db written by
// scripts/protein/make-test-fixtures.py into tests/data/protein/ (NAME.pdb and
// NAME.mkdssp.txt, mkdssp 4.2.2's letters with ' ' as '-').
#include <fstream>
#include <string>
#include <vector>

namespace dit::protein::test {

inline std::string data_dir() { return std::string(DIT_SOURCE_DIR) + "/tests/data/protein"; }

inline const std::vector<std::string>& fixture_names() {
  static const std::vector<std::string> names = {"1CTF_A", "1LQ9_A", "2I7F_A", "2XS6_A", "2VDF_A", "1VQO_P"};
  return names;
}

inline std::string fixture_pdb(const std::string& name) { return data_dir() + "/" + name + ".pdb"; }

inline std::string read_mkdssp(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace dit::protein::test
