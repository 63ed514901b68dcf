// The toy domain's registration and its one check (see gmm_domain.h).
#include "tests/domains/toy/gmm_domain.h"

namespace dit_toy {
namespace {

// Every point within 6 of the origin (the mixtures put 99.99% of their mass inside 4).
const bool check_registered = dit::CheckRegistry<PointCloud>::instance().add(
    "max_radius", "largest distance of a point from the origin (<= 6)",
    [](const PointCloud& c) {
      const double r = c.points.norm(2, 1).max().item<double>();
      return std::vector<dit::CheckValue>{dit::at_most("max_radius", r, 6.0)};
    });

const bool domain_registered = dit::register_domain(
    "gmm", "toy: 2-D point sets from a known Gaussian mixture (tests)",
    [] { return std::make_unique<GmmDomain>(); });

}  // namespace
}  // namespace dit_toy
