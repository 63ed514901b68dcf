// The C-alpha trace potential (see guidance.h for the terms and the table layout).
#include "domains/protein/guidance.h"

#include "domains/protein/backbone.h"

#include <dit/error.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace dit::protein {
namespace {

constexpr double kCaCa = 3.80;      // A, trans peptide
constexpr double kClashCaCa = 4.0;  // A, C-alpha pairs two or more residues apart

torch::Tensor dot3(const torch::Tensor& a, const torch::Tensor& b) { return (a * b).sum(-1); }

// One table's energy at (a0, a1) (degrees, same shape), bilinear between bin centres.
torch::Tensor lookup(const CaPotential::Table& tb, const torch::Tensor& a0, const torch::Tensor& a1) {
  auto axis = [&](const torch::Tensor& a, double lo, int64_t n, bool wrap, torch::Tensor& i0,
                  torch::Tensor& i1) {
    auto u = (a - lo) / tb.width - 0.5;  // in bin-centre units
    if (!wrap) u = u.clamp(0.0, static_cast<double>(n - 1));
    auto fl = torch::floor(u).detach();
    if (!wrap) fl = fl.clamp_max(static_cast<double>(n - 2));
    auto f = u - fl;
    auto i = fl.to(torch::kLong);
    i0 = wrap ? torch::remainder(i, n) : i;
    i1 = wrap ? torch::remainder(i + 1, n) : i + 1;
    return f;
  };
  torch::Tensor i00, i01, i10, i11;
  auto f0 = axis(a0, tb.lo0, tb.n0, tb.wrap0, i00, i10);
  auto f1 = axis(a1, tb.lo1, tb.n1, tb.wrap1, i01, i11);
  auto e = [&](const torch::Tensor& r, const torch::Tensor& c) { return tb.energy.index({r * tb.n1 + c}); };
  return (1 - f0) * (1 - f1) * e(i00, i01) + (1 - f0) * f1 * e(i00, i11) + f0 * (1 - f1) * e(i10, i01) +
         f0 * f1 * e(i10, i11);
}

CaPotential::Table read_table(std::istream& in, const std::string& path, int& line_no, const std::string& header) {
  std::istringstream h(header);
  std::string word, axis0, axis1, mode0, mode1;
  CaPotential::Table tb;
  if (!(h >> word >> tb.name >> axis0 >> tb.lo0 >> tb.n0 >> mode0 >> axis1 >> tb.lo1 >> tb.n1 >> mode1 >> tb.width) ||
      tb.n0 < 2 || tb.n1 < 2 || !(tb.width > 0) || (mode0 != "clamp" && mode0 != "wrap") ||
      (mode1 != "clamp" && mode1 != "wrap")) {
    throw Error(fmt::format("{}:{}: field 'table': expected 'table NAME AXIS LO N clamp|wrap AXIS LO N clamp|wrap "
                            "WIDTH' with N >= 2 and WIDTH > 0",
                            path, line_no));
  }
  tb.wrap0 = mode0 == "wrap";
  tb.wrap1 = mode1 == "wrap";
  std::vector<double> values;
  values.reserve(static_cast<size_t>(tb.n0 * tb.n1));
  std::string line;
  for (int64_t r = 0; r < tb.n0; ++r) {
    if (!std::getline(in, line)) {
      throw Error(fmt::format("{}: table '{}' ends after {} of its {} rows", path, tb.name, r, tb.n0));
    }
    ++line_no;
    std::istringstream row(line);
    double v = 0;
    int64_t k = 0;
    while (row >> v) {
      if (!std::isfinite(v)) throw Error(fmt::format("{}:{}: table '{}': a non-finite energy", path, line_no, tb.name));
      values.push_back(v);
      ++k;
    }
    if (k != tb.n1 || !row.eof()) {
      throw Error(fmt::format("{}:{}: table '{}' row {}: expected {} numbers, read {}", path, line_no, tb.name, r,
                              tb.n1, k));
    }
  }
  tb.energy = torch::tensor(values, torch::kFloat64);
  return tb;
}

}  // namespace

CaPotential load_ca_potential(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open the C-alpha trace potential", path));
  CaPotential pot;
  pot.source = path;
  std::string line;
  int line_no = 0;
  bool header = false, end = false, have_tt = false, have_pp = false, have_rama = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line != "dit-ca-potential 1")
        throw Error(fmt::format("{}:{}: expected the header 'dit-ca-potential 1'", path, line_no));
      header = true;
    } else if (line.rfind("table ", 0) == 0) {
      auto tb = read_table(in, path, line_no, line);
      if (tb.name == "theta_tau") {
        pot.theta_tau = std::move(tb);
        have_tt = true;
      } else if (tb.name == "tau_tau") {
        pot.tau_tau = std::move(tb);
        have_pp = true;
      } else if (tb.name == "rama") {
        pot.rama = std::move(tb);
        have_rama = true;
      } else {
        throw Error(fmt::format("{}:{}: unknown table '{}' (expected theta_tau, tau_tau or rama)", path, line_no,
                                tb.name));
      }
    } else if (line == "end") {
      end = true;
      break;
    } else {
      throw Error(fmt::format("{}:{}: unexpected line '{}'", path, line_no, line.substr(0, 40)));
    }
  }
  if (!header) throw Error(fmt::format("{}: empty, expected the header 'dit-ca-potential 1'", path));
  for (const auto& [have, name] : {std::pair{have_tt, "theta_tau"}, {have_pp, "tau_tau"}, {have_rama, "rama"}})
    if (!have) throw Error(fmt::format("{}: missing table '{}'", path, name));
  if (!end) throw Error(fmt::format("{}: missing 'end' (truncated file?)", path));
  return pot;
}

torch::Tensor trace_theta(const torch::Tensor& ca) {
  const int64_t r = ca.dim() - 2, n = ca.size(r);
  auto u = ca.narrow(r, 0, n - 2) - ca.narrow(r, 1, n - 2);
  auto w = ca.narrow(r, 2, n - 2) - ca.narrow(r, 1, n - 2);
  auto s = (torch::cross(u, w, -1).pow(2).sum(-1) + 1e-12).sqrt();
  return torch::atan2(s, dot3(u, w)) * kDegPerRad;
}

torch::Tensor trace_tau(const torch::Tensor& ca) {
  const int64_t r = ca.dim() - 2, n = ca.size(r);
  auto p0 = ca.narrow(r, 0, n - 3), p1 = ca.narrow(r, 1, n - 3), p2 = ca.narrow(r, 2, n - 3),
       p3 = ca.narrow(r, 3, n - 3);
  auto b0 = p0 - p1, b2 = p3 - p2;
  auto b1 = p2 - p1;
  b1 = b1 / (b1.pow(2).sum(-1, true) + 1e-12).sqrt();
  auto v = b0 - dot3(b0, b1).unsqueeze(-1) * b1;
  auto w = b2 - dot3(b2, b1).unsqueeze(-1) * b1;
  return torch::atan2(dot3(torch::cross(b1, v, -1), w), dot3(v, w) + 1e-12) * kDegPerRad;
}

torch::Tensor trace_energy(const torch::Tensor& ca, const std::vector<int64_t>& lengths, const CaPotential& potential,
                           const TraceEnergyWeights& weights, const torch::Tensor& ss) {
  if (ca.dim() != 3 || ca.size(2) != 3 || static_cast<size_t>(ca.size(0)) != lengths.size())
    throw Error(fmt::format("trace_energy: ca has shape {}, expected [{}, N, 3]", c10::str(ca.sizes()), lengths.size()));
  const int64_t B = ca.size(0), N = ca.size(1);
  // Residue r of chain b is real when r < lengths[b]; a term counts when all its residues are.
  auto len = torch::tensor(std::vector<int64_t>(lengths.begin(), lengths.end()), torch::kLong).unsqueeze(1);
  auto real = (torch::arange(N, torch::kLong).unsqueeze(0) < len).to(ca.scalar_type());  // [B, N]
  auto e = torch::zeros({B}, ca.options());
  if (N < 2) return e;
  auto d = (ca.narrow(1, 1, N - 1) - ca.narrow(1, 0, N - 1)).pow(2).sum(-1).add(1e-12).sqrt();  // [B, N-1]
  e = e + weights.bond * ((d - kCaCa).pow(2) * real.narrow(1, 1, N - 1)).sum(1);
  if (N < 4) return e;
  auto dist = ((ca.unsqueeze(1) - ca.unsqueeze(2)).pow(2).sum(-1) + 1e-12).sqrt();  // [B, N, N]
  auto pair = torch::triu(torch::ones({N, N}, ca.options()), 2).unsqueeze(0) * real.unsqueeze(1) * real.unsqueeze(2);
  e = e + weights.clash * (torch::relu(kClashCaCa - dist).pow(2) * pair).sum({1, 2});
  auto theta = trace_theta(ca);  // [B, N-2], residues 1..N-2
  auto tau = trace_tau(ca);      // [B, N-3], CA(i-1..i+2) for i = 1..N-3
  e = e + weights.local * (lookup(potential.theta_tau, theta.narrow(1, 0, N - 3), tau) * real.narrow(1, 3, N - 3)).sum(1);
  if (ss.defined() && weights.secondary_structure > 0) {
    if (ss.dim() != 3 || ss.size(0) != B || ss.size(1) != N || ss.size(2) != 3)
      throw Error(fmt::format("trace_energy: ss has shape {}, expected [{}, {}, 3]", c10::str(ss.sizes()), B, N));
    auto s = ss.to(ca.scalar_type()) * real.unsqueeze(-1);
    for (const auto& [state, g] : {std::pair{0, kHelixGeometry}, std::pair{1, kStrandGeometry}}) {
      auto in = s.select(2, state);                                              // [B, N]
      auto th = (theta - g.theta0) / g.sigma;                                    // residues 1..N-2
      e = e + weights.secondary_structure * (0.5 * th.pow(2) * in.narrow(1, 1, N - 2)).sum(1);
      auto both = in.narrow(1, 1, N - 3) * in.narrow(1, 2, N - 3);               // residues i, i+1 of tau(i)
      auto dt = (tau - g.tau0) / kDegPerRad;
      e = e + weights.secondary_structure * (g.kappa * (1 - torch::cos(dt)) * both).sum(1);
    }
  }
  if (weights.compactness > 0) {
    auto count = real.sum(1);                                                      // [B]
    auto centre = (ca * real.unsqueeze(-1)).sum(1) / count.clamp_min(1).unsqueeze(-1);
    auto rg = (((ca - centre.unsqueeze(1)).pow(2).sum(-1) * real).sum(1) / count.clamp_min(1) + 1e-12).sqrt();
    auto upper = kRgGuideUpper * kRgPrefactor * count.clamp_min(1).pow(kRgExponent);
    e = e + weights.compactness * count * torch::relu(rg - upper).pow(2);
  }
  if (N < 5) return e;
  e = e + weights.local *
              (lookup(potential.tau_tau, tau.narrow(1, 0, N - 4), tau.narrow(1, 1, N - 4)) * real.narrow(1, 4, N - 4)).sum(1);
  return e;
}

torch::Tensor refine_trace(const torch::Tensor& ca, const std::vector<int64_t>& lengths, const CaPotential& potential,
                           const TraceRefinement& options, const torch::Tensor& ss) {
  torch::AutoGradMode grad_mode(true);
  auto y = ca.to(torch::kFloat64).detach().clone();
  for (int64_t k = 0; k < options.iterations; ++k) {
    y.requires_grad_(true);
    auto energy = trace_energy(y, lengths, potential, options.weights, ss).sum();
    auto g = torch::nan_to_num(torch::autograd::grad({energy}, {y})[0], 0.0, 0.0, 0.0);
    auto move = g * options.rate;
    // At most max_move per residue and iteration: a far-off estimate moves, it does not jump.
    auto norm = move.pow(2).sum(-1, true).sqrt();
    move = move * (options.max_move / norm.clamp_min(options.max_move));
    y = (y - move).detach();
  }
  return y.to(ca.scalar_type());
}

}  // namespace dit::protein
