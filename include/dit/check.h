#pragma once
// Checks: one physics or validity test of a structure, returning named values, each with its
// documented threshold and pass/fail. Every domain keeps one registry of checks over its own
// structure type (docking: a pose in a pocket; proteins: a backbone; crystals: a cell); each
// check registers itself from its own file:
//   static const bool registered =
//       dit::CheckRegistry<MyStructure>::instance().add("name", "what it measures", fn);
#include <dit/error.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dit {

struct CheckValue {
  std::string name;      // e.g. "bond_lengths", "min_distance_to_protein_ratio"
  double value = 0;      // the measured number (NaN when it cannot be computed)
  double threshold = 0;  // the documented bound it is compared with
  bool pass = false;
};

struct CheckReport {
  std::vector<CheckValue> values;
  bool valid() const {  // every value passes
    for (const auto& v : values)
      if (!v.pass) return false;
    return true;
  }
  const CheckValue* find(const std::string& name) const {
    for (const auto& v : values)
      if (v.name == name) return &v;
    return nullptr;
  }
};

// The checks of one structure type S, kept in name order so that a report's columns do not
// depend on static-initialisation order (names unique; the first registration of a name wins
// and a second returns false: registrations run during static initialisation, where an
// exception would end the program).
template <class S>
class CheckRegistry {
 public:
  using Fn = std::function<std::vector<CheckValue>(const S&)>;
  // Whether the check applies to a structure (e.g. needs a receptor); empty: always.
  using Applies = std::function<bool(const S&)>;

  static CheckRegistry& instance() {
    static CheckRegistry registry;
    return registry;
  }

  bool add(const std::string& name, const std::string& description, Fn fn, Applies applies = {}) {
    if (name.empty() || !fn) return false;
    for (const auto& e : entries_)
      if (e.name == name) return false;
    auto at = entries_.begin();
    while (at != entries_.end() && at->name < name) ++at;
    entries_.insert(at, Entry{name, description, std::move(fn), std::move(applies)});
    return true;
  }

  std::vector<std::pair<std::string, std::string>> list() const {  // (name, description)
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : entries_) out.emplace_back(e.name, e.description);
    return out;
  }

  // Runs every check that applies, in name order; a check that throws is a dit::Error naming it.
  template <class Report = CheckReport>
  Report run(const S& structure) const {
    Report report;
    for (const auto& e : entries_) {
      if (e.applies && !e.applies(structure)) continue;
      std::vector<CheckValue> values;
      try {
        values = e.fn(structure);
      } catch (const std::exception& ex) {
        throw Error("check '" + e.name + "': " + ex.what());
      }
      for (auto& v : values) report.values.push_back(std::move(v));
    }
    return report;
  }

 private:
  struct Entry {
    std::string name, description;
    Fn fn;
    Applies applies;
  };
  std::vector<Entry> entries_;
};

// A value against an upper or lower bound (NaN fails).
inline CheckValue at_most(const std::string& name, double value, double threshold) {
  return {name, value, threshold, std::isfinite(value) && value <= threshold};
}
inline CheckValue at_least(const std::string& name, double value, double threshold) {
  return {name, value, threshold, std::isfinite(value) && value >= threshold};
}

}  // namespace dit
