// ProteinDomain (dit/protein.h): length requests -> token sets; C-alpha traces -> backbones.
#include <dit/error.h>
#include <dit/protein.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <mutex>

#include "domains/protein/checks/outliers.h"
#include "domains/protein/guidance.h"
#include "domains/protein/model.h"
#include "domains/protein/rebuild.h"
#include "domains/protein/relax.h"

namespace dit::protein {

struct ProteinDomain::Impl {
  DecodeOptions options;
  TraceGuidance guidance;
  bool secondary_structure = false;
  std::once_flag loaded, potential_loaded;
  RebuildTable table;
  CaPotential potential;
  const RebuildTable& rebuild_table() {
    std::call_once(loaded, [&] {
      table = load_rebuild_table(options.rebuild_table.empty() ? data_dir() + "/protein/rebuild-table.txt"
                                                               : options.rebuild_table);
    });
    return table;
  }
  const CaPotential& ca_potential() {
    std::call_once(potential_loaded, [&] {
      potential = load_ca_potential(guidance.potential.empty() ? data_dir() + "/protein/ca-potential.txt"
                                                               : guidance.potential);
    });
    return potential;
  }
};

ProteinDomain::ProteinDomain(DecodeOptions options, TraceGuidance guidance, bool secondary_structure)
    : impl_(std::make_unique<Impl>()) {
  if (!(guidance.weight >= 0 && guidance.weight <= 1))
    throw Error(fmt::format("protein: trace guidance weight {}, expected a number in [0, 1]", guidance.weight));
  if (!(guidance.secondary_structure >= 0 && std::isfinite(guidance.secondary_structure)))
    throw Error(fmt::format("protein: secondary-structure restraint scale {}, expected a finite number >= 0",
                            guidance.secondary_structure));
  if (!(guidance.t_max >= 0 && guidance.t_max <= 1))
    throw Error(fmt::format("protein: trace guidance t_max {}, expected a number in [0, 1]", guidance.t_max));
  if (!(options.rama_restraint >= 0 && std::isfinite(options.rama_restraint)))
    throw Error(fmt::format("protein: Ramachandran restraint {}, expected a finite number >= 0", options.rama_restraint));
  if (options.polish_rounds < 0)
    throw Error(fmt::format("protein: outlier polish rounds {}, expected a number >= 0", options.polish_rounds));
  impl_->options = std::move(options);
  impl_->guidance = std::move(guidance);
  impl_->secondary_structure = secondary_structure;
}
ProteinDomain::~ProteinDomain() = default;

FlowInputs ProteinDomain::encode(const std::vector<ProteinRequest>& requests) const {
  const auto B = static_cast<int64_t>(requests.size());
  int64_t N = 0;
  for (const auto& r : requests) {
    if (r.length < kMinLength || r.length > kMaxLength)
      throw Error(fmt::format("protein: length {} outside {}..{}", r.length, kMinLength, kMaxLength));
    N = std::max(N, r.length);
  }
  FlowInputs in;
  const bool ss = impl_->secondary_structure;
  in.features = torch::zeros({B, N, kResidueFeatures + (ss ? kSsFeatures : 0)});
  in.mask = torch::zeros({B, N}, torch::kBool);
  in.cond = torch::zeros({B, kCondFeatures});
  for (int64_t i = 0; i < B; ++i) {
    const int64_t L = requests[i].length;
    // The string is checked (length, letters) whatever the model; one without secondary-structure
    // inputs gets it through the guidance only (guide_requests).
    auto f = residue_features(L, N, true, requests[i].secondary_structure);
    in.features[i].copy_(ss ? f : f.narrow(1, 0, kResidueFeatures));
    in.mask[i].narrow(0, 0, L).fill_(true);
    in.cond[i].copy_(length_condition(L));
  }
  return in;
}

void ProteinDomain::project(torch::Tensor& x, double t, const FlowInputs& inputs) const {
  Domain::project(x, t, inputs);  // zero the padding
  if (!inputs.mask.defined()) {
    x.sub_(x.mean(1, true));
    return;
  }
  auto m = inputs.mask.to(x.scalar_type()).unsqueeze(-1);   // [B, N, 1]
  auto mean = (x * m).sum(1, true) / m.sum(1, true).clamp_min(1);
  x.sub_(mean * m);
}

VelocityFn ProteinDomain::guide(VelocityFn velocity, const FlowInputs& inputs) const {
  torch::Tensor ss;  // the requested states (H, E, L one-hot; zero where none), when the model takes them
  if (impl_->secondary_structure)
    ss = inputs.features.narrow(2, kResidueFeatures, kSsFeatures).to(torch::kCPU, torch::kFloat64);
  return guide_with(std::move(velocity), inputs, ss);
}

VelocityFn ProteinDomain::guide_requests(VelocityFn velocity, const FlowInputs& inputs,
                                         const std::vector<ProteinRequest>& requests) const {
  if (!inputs.rows.defined()) return guide(std::move(velocity), inputs);
  // The requested strings, for any model (one without secondary-structure inputs sees them only here).
  const int64_t B = inputs.mask.size(0), N = inputs.mask.size(1);
  torch::Tensor ss;
  for (int64_t b = 0; b < B; ++b) {
    const auto& given = requests.at(static_cast<size_t>(inputs.rows[b].item<int64_t>())).secondary_structure;
    if (given.empty()) continue;
    if (!ss.defined()) ss = torch::zeros({B, N, kSsFeatures}, torch::kFloat64);
    ss[b].copy_(residue_features(static_cast<int64_t>(given.size()), N, true, given)
                    .narrow(1, kResidueFeatures, kSsFeatures));
  }
  return guide_with(std::move(velocity), inputs, ss);
}

VelocityFn ProteinDomain::guide_with(VelocityFn velocity, const FlowInputs& inputs, torch::Tensor ss) const {
  const TraceGuidance g = impl_->guidance;
  if (g.weight <= 0) return velocity;
  const CaPotential& potential = impl_->ca_potential();  // loaded now: errors before sampling
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < inputs.mask.size(0); ++b) lengths.push_back(inputs.mask[b].sum().item<int64_t>());
  TraceRefinement refinement;
  refinement.weights.secondary_structure = g.secondary_structure;
  refinement.weights.compactness = g.compactness * kDefaultCompactness;
  if (g.secondary_structure <= 0) ss = torch::Tensor();
  return [velocity = std::move(velocity), g, &potential, lengths, refinement, ss](const torch::Tensor& x,
                                                                                  const torch::Tensor& t) {
    auto v = velocity(x, t);
    if (t.numel() == 0 || t.max().item<double>() > g.t_max || t.min().item<double>() <= 0) return v;
    // The model's clean estimate x0 = x_t - t v (x_t = (1 - t) x0 + t eps, v = eps - x0), in
    // angstrom, refined on the trace energy; the velocity is the one that points at
    // x0 + weight (refined - x0).
    // On the CPU in float64 (a few hundred residues; the tables live there), whatever the model's device.
    auto tt = t.to(torch::kCPU, torch::kFloat64).reshape({-1, 1, 1});
    auto x0 = (x.to(torch::kCPU, torch::kFloat64) - tt * v.to(torch::kCPU, torch::kFloat64)) * kCoordScale;
    auto shift = (refine_trace(x0, lengths, potential, refinement, ss) - x0) * (g.weight / kCoordScale);  // model units
    return v - (shift / tt).to(v.device(), v.scalar_type());
  };
}

std::vector<Backbone> ProteinDomain::decode(const torch::Tensor& x0, const FlowInputs&,
                                            const std::vector<ProteinRequest>& requests) const {
  auto x = x0.to(torch::kFloat64).contiguous();
  std::vector<Backbone> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t L = requests[i].length;
    const auto row = x[static_cast<int64_t>(i)];
    auto a = row.accessor<double, 2>();
    std::vector<Vec3> ca(L);
    for (int64_t r = 0; r < L; ++r)
      for (int k = 0; k < 3; ++k) ca[r][k] = a[r][k] * kCoordScale;
    out.push_back(decode_trace(ca));
  }
  return out;
}

namespace {

// The (phi, psi) bin centre of the Ramachandran map nearest to an outlier (periodic distance)
// among those that are favoured (at most kFavoured kT above the map's minimum) and inside the
// check's allowed regions.
RamaTarget nearest_favoured(const CaPotential::Table& map, const checks::RamaOutlier& o) {
  constexpr double kFavoured = 3.0;
  const auto e = map.energy.contiguous();
  const double* v = e.data_ptr<double>();
  const double lowest = e.min().item<double>();
  auto wrap = [](double d) { return std::remainder(d, 360.0); };
  RamaTarget best{o.residue, o.phi, o.psi};
  double best_d2 = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < map.n0; ++i)
    for (int64_t j = 0; j < map.n1; ++j) {
      const double phi = wrap(map.lo0 + (i + 0.5) * map.width), psi = wrap(map.lo1 + (j + 0.5) * map.width);
      if (v[i * map.n1 + j] > lowest + kFavoured || !checks::ramachandran_allowed(phi, psi)) continue;
      const double d2 = std::pow(wrap(phi - o.phi), 2) + std::pow(wrap(psi - o.psi), 2);
      if (d2 < best_d2) best_d2 = d2, best = {o.residue, phi, psi};
    }
  return best;
}

}  // namespace

Backbone ProteinDomain::decode_trace(const std::vector<Vec3>& ca) const {
  Backbone b = rebuild_backbone(ca, impl_->rebuild_table());
  // A degenerate trace (a sample that became non-finite arrives as zeros) can rebuild to
  // non-finite atoms: it is returned as is, to be flagged by the checks, not relaxed.
  bool all_finite = true;
  for (const auto* atoms : {&b.n, &b.ca, &b.c, &b.o})
    for (const auto& p : *atoms) all_finite = all_finite && finite(p);
  if (impl_->options.relax && all_finite) {
    RelaxOptions relax;
    relax.continuous = true;  // a generated chain is one chain: bond every peptide
    // A sampled trace is a proposal, not a measurement: a weak pull to it (1 kJ/mol/A^2, a
    // twentieth of the default for real chains) lets the covalent terms win.
    relax.ca_restraint = 100.0;
    // Repulsion from 0.92 x the sum of the Bondi radii (C..C 3.13 A): beyond the checks'
    // clash overlap of 0.4 A (C..C 3.0 A), so that a relaxed backbone does not sit in a clash.
    relax.clash_scale = 0.92;
    if (impl_->options.rama_restraint > 0) {
      relax.rama = &impl_->ca_potential().rama;
      relax.rama_k = impl_->options.rama_restraint;
    }
    relax_backbone(b, relax);
    // The outlier polish (DecodeOptions::polish_rounds), as a crystallographer fixes the outliers
    // MolProbity lists: the knowledge-based map is flat where it is capped (12 kT), so a residue
    // stuck in a disallowed region feels no pull out of it. Each round gives every residue the
    // Ramachandran check flags a harmonic phi/psi restraint to the nearest favoured (phi, psi) of
    // the map inside the allowed regions, and every twisted peptide a harmonic restraint of its
    // omega to planarity, then relaxes again from where the backbone is.
    for (int round = 0; relax.rama != nullptr && round < impl_->options.polish_rounds; ++round) {
      const auto rama = checks::ramachandran_outliers(b);
      const auto twisted = checks::twisted_peptides(b);
      if (rama.empty() && twisted.empty()) break;
      for (const auto& o : rama) relax.rama_targets.push_back(nearest_favoured(*relax.rama, o));
      relax.planar_peptides.insert(relax.planar_peptides.end(), twisted.begin(), twisted.end());
      relax_backbone(b, relax);
    }
  }
  return b;
}

CheckReport check_backbone(const Backbone& backbone) { return CheckRegistry<Backbone>::instance().run(backbone); }

namespace {
const bool registered_protein_domain = register_domain("protein", "protein backbones of a given length (C-alpha trace, rebuilt and relaxed)",
                                        [] { return std::make_unique<ProteinDomain>(); });
}  // namespace

}  // namespace dit::protein
