// Batch domains register themselves by name (DIT_REGISTER_BATCH_DOMAIN in their own file).
#include <dit/jobs.h>
#include <dit/registry.h>

namespace dit::jobs {

namespace {
Registry<BatchDomainFactory>& registry() {
  static Registry<BatchDomainFactory> domains("batch domain");
  return domains;
}
}  // namespace

bool register_batch_domain(const std::string& name, BatchDomainFactory factory) {
  return registry().add(name, std::move(factory));
}

std::unique_ptr<BatchDomain> make_batch_domain(const std::string& name) {
  return registry().find(name)();
}

std::vector<std::string> batch_domain_names() { return registry().names(); }

}  // namespace dit::jobs
