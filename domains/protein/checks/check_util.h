#pragma once
// Helpers shared by the backbone checks (domains/protein/checks/*.cpp); not public API.
#include <dit/check.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "domains/protein/backbone.h"

namespace dit::protein::checks {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A value that cannot be computed (too few residues, inconsistent fields): NaN, failing.
inline CheckValue failed(const std::string& name, double threshold) { return CheckValue{name, kNaN, threshold, false}; }

inline bool register_check(const std::string& name, const std::string& description,
                           CheckRegistry<Backbone>::Fn fn, CheckRegistry<Backbone>::Applies applies = {}) {
  return CheckRegistry<Backbone>::instance().add(name, description, std::move(fn), std::move(applies));
}

// Whether the backbone's fields are consistent (validate() does not throw) and it has at least
// `min_residues` residues.
inline bool usable(const Backbone& b, size_t min_residues) {
  if (b.size() < min_residues) return false;
  try {
    validate(b);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

inline double distance(const Vec3& a, const Vec3& b) { return norm(sub(a, b)); }

// Angle a-b-c at b, degrees.
inline double angle(const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 u = sub(a, b), v = sub(c, b);
  const double x = dot(u, v) / (norm(u) * norm(v));
  return std::acos(std::fmax(-1.0, std::fmin(1.0, x))) * 180.0 / kPi;
}

// Dihedral a-b-c-d, degrees in (-180, 180] (IUPAC sign convention).
inline double dihedral(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
  const Vec3 b0 = sub(a, b), b1 = sub(c, b), b2 = sub(d, c);
  const double n1 = norm(b1);
  const Vec3 b1n = {b1[0] / n1, b1[1] / n1, b1[2] / n1};
  const double p0 = dot(b0, b1n), p2 = dot(b2, b1n);
  const Vec3 v = {b0[0] - p0 * b1n[0], b0[1] - p0 * b1n[1], b0[2] - p0 * b1n[2]};
  const Vec3 w = {b2[0] - p2 * b1n[0], b2[1] - p2 * b1n[1], b2[2] - p2 * b1n[2]};
  const double x = dot(v, w), y = dot(cross(b1n, v), w);
  return std::atan2(y, x) * 180.0 / kPi;
}

}  // namespace dit::protein::checks
