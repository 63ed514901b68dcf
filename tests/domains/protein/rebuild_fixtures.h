#pragma once
// Test helper: the real held-out chains of tests/data/protein/rebuild/ (written by
// scripts/protein/make-rebuild-fixtures.py) read into Backbones by a minimal PDB ATOM reader.
#include "domains/protein/backbone.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace dit::protein::testing {

inline std::string rebuild_fixture_dir() { return std::string(DIT_SOURCE_DIR) + "/tests/data/protein/rebuild/"; }
inline std::string rebuild_table_path() { return std::string(DIT_SOURCE_DIR) + "/data/protein/rebuild-table.txt"; }

// N, CA, C, O and CB (NaN for glycine) of one chain; residues in file order.
inline Backbone read_fixture(const std::string& stem) {
  static const std::map<std::string, char> one = {
      {"ALA", 'A'}, {"ARG", 'R'}, {"ASN", 'N'}, {"ASP", 'D'}, {"CYS", 'C'}, {"GLN", 'Q'}, {"GLU", 'E'},
      {"GLY", 'G'}, {"HIS", 'H'}, {"ILE", 'I'}, {"LEU", 'L'}, {"LYS", 'K'}, {"MET", 'M'}, {"PHE", 'F'},
      {"PRO", 'P'}, {"SER", 'S'}, {"THR", 'T'}, {"TRP", 'W'}, {"TYR", 'Y'}, {"VAL", 'V'}};
  const std::string path = rebuild_fixture_dir() + stem + ".pdb";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  Backbone bb;
  bb.name = stem;
  std::string line, last_res;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  while (std::getline(in, line)) {
    if (line.compare(0, 4, "ATOM") != 0) continue;
    std::string atom = line.substr(12, 4), res = line.substr(22, 5);
    atom.erase(0, atom.find_first_not_of(' '));
    atom.erase(atom.find_last_not_of(' ') + 1);
    if (res != last_res) {
      last_res = res;
      auto it = one.find(line.substr(17, 3));
      bb.sequence += it == one.end() ? 'X' : it->second;
      for (auto* v : {&bb.n, &bb.ca, &bb.c, &bb.o, &bb.cb}) v->push_back({nan, nan, nan});
    }
    Vec3 p{std::stod(line.substr(30, 8)), std::stod(line.substr(38, 8)), std::stod(line.substr(46, 8))};
    if (atom == "N") bb.n.back() = p;
    else if (atom == "CA") bb.ca.back() = p;
    else if (atom == "C") bb.c.back() = p;
    else if (atom == "O") bb.o.back() = p;
    else if (atom == "CB") bb.cb.back() = p;
  }
  return bb;
}

inline std::vector<std::string> rebuild_fixture_names() { return {"1Q8C_A", "1J34_B", "4FIO_B"}; }

// The first `n` residues of a chain.
inline Backbone head(const Backbone& bb, size_t n) {
  Backbone out;
  out.name = bb.name + ":" + std::to_string(n);
  out.sequence = bb.sequence.substr(0, n);
  auto cut = [n](const std::vector<Vec3>& v) { return std::vector<Vec3>(v.begin(), v.begin() + std::min(n, v.size())); };
  out.n = cut(bb.n);
  out.ca = cut(bb.ca);
  out.c = cut(bb.c);
  out.o = cut(bb.o);
  out.cb = cut(bb.cb);
  return out;
}

inline double dist2(const Vec3& a, const Vec3& b) {
  return (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]);
}

}  // namespace dit::protein::testing
