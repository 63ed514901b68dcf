#pragma once
// Shared by the crystal checks (one file per check, each registering itself).
#include <dit/check.h>
#include <dit/crystal.h>

namespace dit::crystal::checks {

inline bool register_check(const std::string& name, const std::string& description,
                           CheckRegistry<Crystal>::Fn fn) {
  return CheckRegistry<Crystal>::instance().add(name, description, std::move(fn));
}
// A cell whose angles form no cell, or with no atoms: every value of a check fails (NaN).
inline bool usable(const Crystal& c) { return c.size() > 0 && std::isfinite(cell_volume(c.cell)); }
inline CheckValue failed(const std::string& name, double threshold) { return {name, std::nan(""), threshold, false}; }

}  // namespace dit::crystal::checks
