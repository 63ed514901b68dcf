// Sampler registry: each sampler registers itself by name in its own file (LAMMPS style).
#include <dit/error.h>
#include <dit/sampler.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dit {
namespace {

struct Entry {
  std::string description;
  SamplerFactory factory;
};

// Function-local static: registrations run from other translation units' static
// initialisers, in an unspecified order, so the map must exist on first use.
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> samplers;
  return samplers;
}

std::string registered_names() {
  std::string names;
  for (const auto& [name, entry] : registry()) {
    if (!names.empty()) names += ", ";
    names += '"' + name + '"';
  }
  return names.empty() ? std::string("(none registered)") : names;
}

}  // namespace

// Returns false (and keeps the first) when the name is taken: this runs during static
// initialisation, where an exception would terminate the program.
bool register_sampler(const std::string& name, const std::string& description,
                      SamplerFactory factory) {
  if (name.empty() || !factory) return false;
  return registry().emplace(name, Entry{description, std::move(factory)}).second;
}

std::unique_ptr<Sampler> make_sampler(const std::string& name) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    throw Error(fmt::format("sampler: unknown name \"{}\", expected one of {}", name,
                            registered_names()));
  }
  return it->second.factory();
}

std::vector<std::pair<std::string, std::string>> list_samplers() {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(registry().size());
  for (const auto& [name, entry] : registry()) out.emplace_back(name, entry.description);
  return out;
}

torch::Tensor time_tensor(const torch::Tensor& x, double t) {
  if (!x.defined() || x.dim() < 1) {
    throw Error("time_tensor: x must be a defined tensor [B, ...] with a batch dimension");
  }
  return torch::full({x.size(0)}, t, x.options());  // t: [B]
}

}  // namespace dit
