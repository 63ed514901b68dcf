// ProteinDomain (dit/protein.h): length requests -> token sets; C-alpha traces -> backbones.
#include <dit/error.h>
#include <dit/protein.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <mutex>

#include "domains/protein/model.h"
#include "domains/protein/rebuild.h"
#include "domains/protein/relax.h"

namespace dit::protein {

struct ProteinDomain::Impl {
  DecodeOptions options;
  std::once_flag loaded;
  RebuildTable table;
  const RebuildTable& rebuild_table() {
    std::call_once(loaded, [&] {
      table = load_rebuild_table(options.rebuild_table.empty() ? data_dir() + "/protein/rebuild-table.txt"
                                                               : options.rebuild_table);
    });
    return table;
  }
};

ProteinDomain::ProteinDomain(DecodeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
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
  in.features = torch::zeros({B, N, kResidueFeatures});
  in.mask = torch::zeros({B, N}, torch::kBool);
  in.cond = torch::zeros({B, kCondFeatures});
  for (int64_t i = 0; i < B; ++i) {
    const int64_t L = requests[i].length;
    in.features[i].copy_(residue_features(L, N));
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

Backbone ProteinDomain::decode_trace(const std::vector<Vec3>& ca) const {
  Backbone b = rebuild_backbone(ca, impl_->rebuild_table());
  if (impl_->options.relax) {
    RelaxOptions relax;
    relax.continuous = true;  // a generated chain is one chain: bond every peptide
    // A sampled trace is a proposal, not a measurement: a weak pull to it (1 kJ/mol/A^2, a
    // twentieth of the default for real chains) lets the covalent terms win.
    relax.ca_restraint = 100.0;
    // Repulsion from 0.92 x the sum of the Bondi radii (C..C 3.13 A): beyond the checks'
    // clash overlap of 0.4 A (C..C 3.0 A), so that a relaxed backbone does not sit in a clash.
    relax.clash_scale = 0.92;
    relax_backbone(b, relax);
  }
  return b;
}

CheckReport check_backbone(const Backbone& backbone) { return CheckRegistry<Backbone>::instance().run(backbone); }

namespace {
const bool registered = register_domain("protein", "protein backbones of a given length (C-alpha trace, rebuilt and relaxed)",
                                        [] { return std::make_unique<ProteinDomain>(); });
}  // namespace

}  // namespace dit::protein
