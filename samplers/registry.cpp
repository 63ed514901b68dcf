// Sampler registry: each sampler registers itself by name in its own file (LAMMPS style).
#include <dit/error.h>
#include <dit/registry.h>
#include <dit/sampler.h>

namespace dit {
namespace {

// Function-local static: registrations run from other translation units' static
// initialisers, in an unspecified order, so the table must exist on first use.
Registry<SamplerFactory>& sampler_registry() {
  static Registry<SamplerFactory> samplers("sampler");
  return samplers;
}

}  // namespace

bool register_sampler(const std::string& name, const std::string& description,
                      SamplerFactory factory) {
  return sampler_registry().add(name, description, std::move(factory));
}

std::unique_ptr<Sampler> make_sampler(const std::string& name) { return sampler_registry().find(name)(); }

std::vector<std::pair<std::string, std::string>> list_samplers() { return sampler_registry().list(); }

torch::Tensor time_tensor(const torch::Tensor& x, double t) {
  if (!x.defined() || x.dim() < 1) {
    throw Error("time_tensor: x must be a defined tensor [B, ...] with a batch dimension");
  }
  return torch::full({x.size(0)}, t, x.options());  // t: [B]
}

}  // namespace dit
