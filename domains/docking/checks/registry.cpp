// The pose-check registry: each check registers itself from its own file
// (domains/docking/checks/NAME.cpp) and run_pose_checks runs them all, in name order.
#include <dit/docking.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <algorithm>

namespace dit::docking {
namespace {

struct Entry {
  std::string name;
  std::string description;
  PoseCheckFn fn;
  bool needs_receptor = false;
};

// Construct on first use: checks register from static initialisers in other files.
std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

}  // namespace

bool register_pose_check(const std::string& name, const std::string& description, PoseCheckFn fn,
                         bool needs_receptor) {
  if (!fn) throw dit::Error(fmt::format("pose check '{}' has no function", name));
  auto& entries = registry();
  for (const Entry& e : entries)
    if (e.name == name) throw dit::Error(fmt::format("pose check '{}' is registered twice", name));
  entries.push_back(Entry{name, description, std::move(fn), needs_receptor});
  // Name order: the report's columns do not depend on static initialisation order.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return true;
}

std::vector<std::string> pose_check_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.name);
  return names;
}

PoseCheckReport run_pose_checks(const PoseCheckInput& input) {
  PoseCheckReport report;
  for (const Entry& e : registry()) {
    if (e.needs_receptor && input.receptor == nullptr) continue;
    std::vector<CheckValue> values;
    try {
      values = e.fn(input);
    } catch (const std::exception& ex) {
      throw dit::Error(fmt::format("pose check '{}': {}", e.name, ex.what()));
    }
    for (CheckValue& v : values) report.values.push_back(std::move(v));
  }
  return report;
}

bool PoseCheckReport::pb_valid() const {
  return std::all_of(values.begin(), values.end(), [](const CheckValue& v) { return v.pass; });
}

const CheckValue* PoseCheckReport::find(const std::string& name) const {
  for (const CheckValue& v : values)
    if (v.name == name) return &v;
  return nullptr;
}

}  // namespace dit::docking
