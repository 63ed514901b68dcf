#pragma once
// Internal to libdit_docking: points bucketed in cubic cells, for neighbour queries within a
// radius (receptor bond perception, grid maps).
#include <dit/docking.h>

#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace dit::docking {

class CellList {
 public:
  CellList(const std::vector<Vec3>& points, double cell_size) : cell_(cell_size) {
    for (size_t i = 0; i < points.size(); ++i)
      cells_[key(coord(points[i][0]), coord(points[i][1]), coord(points[i][2]))].push_back(static_cast<int>(i));
  }
  // Calls visit(i) for every point in the cells within `radius` of p (a superset of the points
  // within `radius`: callers test the distance).
  template <typename F>
  void near(const Vec3& p, double radius, F&& visit) const {
    const int r = static_cast<int>(std::ceil(radius / cell_));
    const int cx = coord(p[0]), cy = coord(p[1]), cz = coord(p[2]);
    for (int x = cx - r; x <= cx + r; ++x)
      for (int y = cy - r; y <= cy + r; ++y)
        for (int z = cz - r; z <= cz + r; ++z) {
          auto it = cells_.find(key(x, y, z));
          if (it == cells_.end()) continue;
          for (int i : it->second) visit(i);
        }
  }

 private:
  static int64_t key(int x, int y, int z) {
    return (static_cast<int64_t>(x & 0x1fffff) << 42) | (static_cast<int64_t>(y & 0x1fffff) << 21) |
           static_cast<int64_t>(z & 0x1fffff);
  }
  int coord(double v) const { return static_cast<int>(std::floor(v / cell_)); }
  double cell_;
  std::unordered_map<int64_t, std::vector<int>> cells_;
};

}  // namespace dit::docking
