// Batch domains register themselves by name (DIT_REGISTER_BATCH_DOMAIN in their own file).
#include <dit/error.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

namespace dit::jobs {

namespace {
std::map<std::string, BatchDomainFactory>& registry() {
  static std::map<std::string, BatchDomainFactory> r;
  return r;
}
}  // namespace

void register_batch_domain(const std::string& name, BatchDomainFactory factory) {
  registry()[name] = std::move(factory);
}

std::unique_ptr<BatchDomain> make_batch_domain(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end())
    throw Error(fmt::format("unknown domain '{}' (known: {})", name, fmt::join(batch_domain_names(), ", ")));
  return it->second();
}

std::vector<std::string> batch_domain_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

}  // namespace dit::jobs
