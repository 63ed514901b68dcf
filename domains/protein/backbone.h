#pragma once
#include <array>
#include <string>
#include <vector>
namespace dit::protein {
using Vec3 = std::array<double, 3>;
struct Backbone {
  std::string name;
  std::string sequence;  // one letter per residue; generated chains: all 'A'; 'G' has no CB
  std::vector<Vec3> n, ca, c, o, cb;  // cb may be empty (not built)
  size_t size() const { return ca.size(); }
};
}  // namespace dit::protein
