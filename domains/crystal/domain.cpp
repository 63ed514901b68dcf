// CrystalDomain (dit/crystal.h): compositions -> token sets; tokens -> cells.
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/sampler.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <cmath>

#include "domains/crystal/model.h"

namespace dit::crystal {

namespace {
// [B, T, 3] bool: the atom tokens' numbers (periodic), not the lattice tokens' or the padding.
torch::Tensor periodic_of(const torch::Tensor& mask) {
  auto p = mask.clone();
  p.narrow(1, 0, kLatticeTokens).fill_(false);
  return p.unsqueeze(-1).expand({mask.size(0), mask.size(1), 3});
}
}  // namespace

CrystalDomain::CrystalDomain(LatticeScaling scaling, double repulsion, double anneal)
    : scaling_(scaling), repulsion_(repulsion), anneal_(anneal) {
  if (!(repulsion >= 0) || !(anneal >= 0))
    throw Error(fmt::format("crystal: repulsion {} and anneal {} must be >= 0", repulsion, anneal));
}

void CrystalDomain::use_sampling(const FlowSampling& sampling) {
  grid_.clear();
  if (!make_sampler(sampling.sampler)->adaptive())
    grid_ = make_time_grid(sampling.options.grid)->times(sampling.options.steps);
}

double anneal_factor(double slope, double t, const std::vector<double>& grid) {
  double factor = 1.0 + slope * (1.0 - t);
  // The grid interval [t_{k+1}, t_k] holding t (Euler evaluates at t_k; other solvers between).
  for (size_t k = 0; k + 1 < grid.size(); ++k) {
    if (t <= grid[k] && t > grid[k + 1]) {
      factor = std::min(factor, std::max(1.0, t / (grid[k] - grid[k + 1])));
      break;
    }
  }
  return factor;
}

VelocityFn CrystalDomain::guide(VelocityFn velocity, const FlowInputs& inputs) const {
  if (anneal_ > 0) {
    const auto atoms = periodic_of(inputs.mask);
    velocity = [velocity, atoms, slope = anneal_, grid = grid_](const torch::Tensor& x, const torch::Tensor& t) {
      auto v = velocity(x, t);
      if (t.numel() == 0) return v;
      const double factor = anneal_factor(slope, t.max().item<double>(), grid);
      return torch::where(atoms.to(v.device()), v * factor, v);
    };
  }
  if (repulsion_ <= 0) return velocity;
  const auto scaling = scaling_;
  const double step = repulsion_;
  const auto mask = inputs.mask;
  // Covalent radii from the token features (column: radius / 2 A), 0 for lattice and padding.
  const auto radii = inputs.features.select(-1, 2 + kMaxZ + 1) * 2.0;
  return [velocity, scaling, step, mask, radii](const torch::Tensor& x, const torch::Tensor& t) {
    auto v = velocity(x, t);
    if (t.numel() == 0 || t.max().item<double>() >= 0.3) return v;
    auto extra = torch::zeros_like(v);
    torch::AutoGradMode grad(true);
    for (int64_t b = 0; b < x.size(0); ++b) {
      const int64_t n = mask[b].sum().item<int64_t>() - kLatticeTokens;
      if (n < 2) continue;
      auto xb = x[b].to(torch::kFloat64);
      auto lat = xb.narrow(0, 0, kLatticeTokens).contiguous();
      auto a = lat.accessor<double, 2>();
      const std::array<double, 6> state{a[0][0], a[0][1], a[0][2], a[1][0], a[1][1], a[1][2]};
      const auto cell = decode_lattice(state, n, scaling);
      if (!std::isfinite(cell_volume(cell))) continue;
      const auto m = lattice_matrix(cell);
      auto L = torch::tensor({m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2]},
                             torch::kFloat64).reshape({3, 3});
      auto f = xb.narrow(0, kLatticeTokens, n).detach().clone().requires_grad_(true);
      auto d = f.unsqueeze(0) - f.unsqueeze(1);                           // [n, n, 3]
      d = d - torch::round(d).detach();                                   // minimum image
      auto dist = (torch::matmul(d, L).pow(2).sum(-1) + 1e-12).sqrt();    // [n, n]
      auto r = radii[b].narrow(0, kLatticeTokens, n).to(torch::kFloat64);
      auto bound = 0.6 * (r.unsqueeze(0) + r.unsqueeze(1));
      auto off = 1.0 - torch::eye(n, torch::kFloat64);
      auto energy = (torch::relu(bound - dist).pow(2) * off).sum() / 2;
      if (energy.item<double>() <= 0) continue;
      auto g = torch::autograd::grad({energy}, {f})[0];
      extra[b].narrow(0, kLatticeTokens, n).copy_(g.to(extra.scalar_type()) * step);
    }
    return v + extra;
  };
}

FlowInputs CrystalDomain::encode(const std::vector<CrystalRequest>& requests) const {
  const auto B = static_cast<int64_t>(requests.size());
  int64_t T = 0;
  for (const auto& r : requests) {
    int64_t n = 0;
    for (const auto& [z, count] : r.composition) n += count;
    if (n < 1 || n > kMaxAtoms) throw Error(fmt::format("crystal: {} atoms in the cell, outside 1..{}", n, kMaxAtoms));
    T = std::max(T, kLatticeTokens + n);
  }
  FlowInputs in;
  in.features = torch::zeros({B, T, kTokenFeatures});
  in.mask = torch::zeros({B, T}, torch::kBool);
  in.cond = torch::zeros({B, kCondFeatures});
  in.labels = torch::zeros({B}, torch::kLong);
  for (int64_t i = 0; i < B; ++i) fill_inputs(requests[i].composition, requests[i].spacegroup, T, in, i);
  return in;
}

torch::Tensor CrystalDomain::noise(const FlowInputs& inputs, uint64_t seed, int64_t first_index) const {
  auto x = token_noise(seed, first_index, inputs.mask, 3);
  // Uniform on the circle for the atoms: u = Phi(z) - 1/2 of the same seeded Gaussian numbers.
  auto uniform = 0.5 * torch::erf(x / std::sqrt(2.0));
  return torch::where(periodic_of(inputs.mask), uniform, x);
}

void CrystalDomain::project(torch::Tensor& x, double t, const FlowInputs& inputs) const {
  Domain::project(x, t, inputs);  // zero the padding
  x.copy_(torch::where(periodic_of(inputs.mask), wrap_periodic(x), x));
}

std::vector<Crystal> CrystalDomain::decode(const torch::Tensor& x0, const FlowInputs&,
                                           const std::vector<CrystalRequest>& requests) const {
  auto x = x0.to(torch::kFloat64).contiguous();
  std::vector<Crystal> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto row = x[static_cast<int64_t>(i)];
    auto a = row.accessor<double, 2>();
    Crystal c;
    c.numbers = atom_numbers(requests[i].composition);
    const auto n = static_cast<int64_t>(c.numbers.size());
    const std::array<double, 6> state{a[0][0], a[0][1], a[0][2], a[1][0], a[1][1], a[1][2]};
    c.cell = decode_lattice(state, n, scaling_);
    for (int64_t k = 0; k < n; ++k) {
      Vec3 f{};
      for (int d = 0; d < 3; ++d) {
        f[d] = a[kLatticeTokens + k][d];
        f[d] -= std::floor(f[d]);
      }
      c.frac.push_back(f);
    }
    c.name = formula(requests[i].composition);
    out.push_back(std::move(c));
  }
  return out;
}

CheckReport check_crystal(const Crystal& crystal) { return CheckRegistry<Crystal>::instance().run(crystal); }

namespace {
const bool registered_crystal_domain = register_domain("crystal", "crystal structures of a given composition (periodic flow matching)",
                                        [] { return std::make_unique<CrystalDomain>(); });
}  // namespace

}  // namespace dit::crystal
