#pragma once
// Internal: a name -> (description, factory) table filled by static registrations in other
// translation units (samplers, training objectives). Not public API.
#include <dit/error.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dit::detail {

template <class Factory>
class NamedRegistry {
 public:
  // `kind` names the table in errors ("sampler", "training objective").
  explicit NamedRegistry(const char* kind) : kind_(kind) {}

  // Returns false (and keeps the first) when the name is taken or the entry is empty: this
  // runs during static initialisation, where an exception would terminate the program.
  bool add(const std::string& name, const std::string& description, Factory factory) {
    if (name.empty() || !factory) return false;
    return entries_.emplace(name, Entry{description, std::move(factory)}).second;
  }

  // Throws dit::Error listing the registered names when `name` is unknown.
  const Factory& find(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string names;
      for (const auto& [n, e] : entries_) names += (names.empty() ? "\"" : ", \"") + n + '"';
      throw Error(fmt::format("{}: unknown name \"{}\", expected one of {}", kind_, name,
                              names.empty() ? std::string("(none registered)") : names));
    }
    return it->second.factory;
  }

  std::vector<std::pair<std::string, std::string>> list() const {  // (name, description)
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, entry] : entries_) out.emplace_back(name, entry.description);
    return out;
  }

 private:
  struct Entry {
    std::string description;
    Factory factory;
  };
  const char* kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dit::detail
