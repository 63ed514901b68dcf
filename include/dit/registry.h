#pragma once
// dit::Registry<Factory>: a name -> (description, factory) table that styles fill by static
// registration, each in its own file (samplers, training objectives, batch domains; LAMMPS
// style). Public so that every part (samplers included, which may not see src/) uses one policy:
//   - add() returns false and keeps the first entry when the name is empty, already taken, or the
//     factory is empty: registrations run during static initialisation, where an exception would
//     terminate the program;
//   - find() throws dit::Error naming the table and listing the registered names.
// Keep the table in a function-local static (registrations from other translation units run in
// an unspecified order, so it must exist on first use):
//   dit::Registry<SamplerFactory>& samplers() { static dit::Registry<SamplerFactory> r("sampler"); return r; }
#include <dit/error.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dit {

template <class Factory>
class Registry {
 public:
  // `kind` names the table in errors ("sampler", "training objective", "batch domain").
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  bool add(const std::string& name, std::string description, Factory factory) {
    if (name.empty() || !factory) return false;
    return entries_.emplace(name, Entry{std::move(description), std::move(factory)}).second;
  }
  bool add(const std::string& name, Factory factory) {
    return add(name, std::string(), std::move(factory));
  }

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // Throws dit::Error when `name` is unknown:
  //   sampler: unknown name "nope", expected one of "euler", "heun"
  const Factory& find(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string known;
      for (const auto& entry : entries_) known += (known.empty() ? "\"" : ", \"") + entry.first + '"';
      throw Error(kind_ + ": unknown name \"" + name + "\", expected one of " +
                  (known.empty() ? std::string("(none registered)") : known));
    }
    return it->second.factory;
  }

  std::vector<std::string> names() const {  // sorted
    std::vector<std::string> out;
    for (const auto& entry : entries_) out.push_back(entry.first);
    return out;
  }

  std::vector<std::pair<std::string, std::string>> list() const {  // (name, description), sorted
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& entry : entries_) out.emplace_back(entry.first, entry.second.description);
    return out;
  }

 private:
  struct Entry {
    std::string description;
    Factory factory;
  };
  std::string kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dit
