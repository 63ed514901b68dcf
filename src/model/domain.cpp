// The domain base (default constraint and hooks) and the domain registry (see dit/domain.h).
#include <dit/domain.h>

#include <dit/registry.h>

namespace dit {

void Domain::project(torch::Tensor& x, double, const FlowInputs& inputs) const {
  if (!inputs.mask.defined() || x.dim() < 3) return;
  x.mul_(inputs.mask.unsqueeze(-1).to(x.dtype()));  // padded tokens stay at zero
}

SampleHooks Domain::hooks() const {
  SampleHooks hooks;
  hooks.project = [this](torch::Tensor& x, double t, const FlowInputs& in) { project(x, t, in); };
  hooks.guide = [this](VelocityFn v, const FlowInputs& in) { return guide(std::move(v), in); };
  return hooks;
}

namespace {
Registry<DomainFactory>& registry() {
  static Registry<DomainFactory> domains("domain");
  return domains;
}
}  // namespace

bool register_domain(const std::string& name, const std::string& description, DomainFactory factory) {
  return registry().add(name, description, std::move(factory));
}

std::unique_ptr<Domain> make_domain(const std::string& name) { return registry().find(name)(); }

std::vector<std::pair<std::string, std::string>> list_domains() { return registry().list(); }

}  // namespace dit
