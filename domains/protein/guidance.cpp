// The C-alpha trace potential (see guidance.h for the terms and the table layout).
#include "domains/protein/guidance.h"

#include "domains/protein/backbone.h"

#include <dit/error.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

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

namespace {

// acc += k a (the Vec3 helpers are backbone.h's).
inline void add_to(Vec3& acc, const Vec3& a, double k = 1.0) {
  for (int c = 0; c < 3; ++c) acc[c] += k * a[c];
}

// A table's bilinear energy at (a0, a1) (degrees) and its partial derivatives, as lookup() (the
// floor is a constant; clamped axes have no slope outside their range).
double table_energy(const CaPotential::Table& tb, const double* e, double a0, double a1, double& d0, double& d1) {
  auto axis = [&](double a, double lo, int64_t n, bool wrap, int64_t& i0, int64_t& i1, double& slope) {
    double u = (a - lo) / tb.width - 0.5;
    slope = 1.0 / tb.width;
    if (!wrap && (u < 0.0 || u > static_cast<double>(n - 1))) {
      u = std::clamp(u, 0.0, static_cast<double>(n - 1));
      slope = 0.0;
    }
    double fl = std::floor(u);
    if (!wrap) fl = std::min(fl, static_cast<double>(n - 2));
    const auto i = static_cast<int64_t>(fl);
    i0 = wrap ? ((i % n) + n) % n : i;
    i1 = wrap ? (((i + 1) % n) + n) % n : i + 1;
    return u - fl;
  };
  int64_t r0 = 0, r1 = 0, c0 = 0, c1 = 0;
  double s0 = 0, s1 = 0;
  const double f0 = axis(a0, tb.lo0, tb.n0, tb.wrap0, r0, r1, s0);
  const double f1 = axis(a1, tb.lo1, tb.n1, tb.wrap1, c0, c1, s1);
  const double e00 = e[r0 * tb.n1 + c0], e01 = e[r0 * tb.n1 + c1], e10 = e[r1 * tb.n1 + c0], e11 = e[r1 * tb.n1 + c1];
  d0 = ((1 - f1) * (e10 - e00) + f1 * (e11 - e01)) * s0;
  d1 = ((1 - f0) * (e01 - e00) + f0 * (e11 - e10)) * s1;
  return (1 - f0) * (1 - f1) * e00 + (1 - f0) * f1 * e01 + f0 * (1 - f1) * e10 + f0 * f1 * e11;
}

// Virtual angle at p1 (degrees, as trace_theta) and its gradient on p0, p1, p2.
double angle_with_gradient(const Vec3& p0, const Vec3& p1, const Vec3& p2, Vec3 g[3]) {
  const Vec3 u = sub(p0, p1), w = sub(p2, p1);
  const double uu = dot(u, u), ww = dot(w, w), c = dot(u, w);
  const Vec3 x = cross(u, w);
  const double s = std::sqrt(dot(x, x) + 1e-12);
  const double den = s * s + c * c;
  // d theta = (c ds - s dc) / (s^2 + c^2); ds/du = (|w|^2 u - c w) / s, dc/du = w (and u <-> w).
  Vec3 gu{}, gw{};
  for (int k = 0; k < 3; ++k) {
    gu[k] = (c * (ww * u[k] - c * w[k]) / s - s * w[k]) / den * kDegPerRad;
    gw[k] = (c * (uu * w[k] - c * u[k]) / s - s * u[k]) / den * kDegPerRad;
  }
  g[0] = gu, g[2] = gw;
  g[1] = scale(add(gu, gw), -1.0);
  return std::atan2(s, c) * kDegPerRad;
}

// Virtual dihedral p0..p3 (degrees, as trace_tau) and its gradient on the four points:
// reverse-mode by hand through b1 normalised, v and w (b0, b2 without their b1 components),
// y = (n x v).w and x = v.w.
double dihedral_with_gradient(const Vec3& p0, const Vec3& p1, const Vec3& p2, const Vec3& p3, Vec3 g[4]) {
  const Vec3 b0 = sub(p0, p1), b1 = sub(p2, p1), b2 = sub(p3, p2);
  const double nb = std::sqrt(dot(b1, b1) + 1e-12);
  const Vec3 n = scale(b1, 1.0 / nb);
  const double b0n = dot(b0, n), b2n = dot(b2, n);
  const Vec3 v = sub(b0, scale(n, b0n)), w = sub(b2, scale(n, b2n));
  const double y = dot(cross(n, v), w), x = dot(v, w) + 1e-12;
  const double r2 = x * x + y * y;
  const double gy = x / r2 * kDegPerRad, gx = -y / r2 * kDegPerRad;
  // y = n . (v x w): dy/dn = v x w, dy/dv = w x n, dy/dw = n x v.
  Vec3 gv = scale(cross(w, n), gy), gw = scale(cross(n, v), gy), gn = scale(cross(v, w), gy);
  add_to(gv, w, gx);
  add_to(gw, v, gx);
  // v = b0 - (b0.n) n, w = b2 - (b2.n) n.
  const double gvn = dot(gv, n), gwn = dot(gw, n);
  const Vec3 gb0 = sub(gv, scale(n, gvn)), gb2 = sub(gw, scale(n, gwn));
  add_to(gn, b0, -gvn);
  add_to(gn, gv, -b0n);
  add_to(gn, b2, -gwn);
  add_to(gn, gw, -b2n);
  // n = b1 / |b1|.
  const Vec3 gb1 = sub(scale(gn, 1.0 / nb), scale(b1, dot(gn, b1) / (nb * nb * nb)));
  g[0] = gb0;
  g[1] = scale(add(gb0, gb1), -1.0);
  g[2] = sub(gb1, gb2);
  g[3] = gb2;
  return std::atan2(y, x) * kDegPerRad;
}

}  // namespace

double chain_trace_energy(const torch::Tensor& ca_in, const CaPotential& potential, const TraceEnergyWeights& weights,
                          const torch::Tensor& ss_in, torch::Tensor* gradient) {
  if (ca_in.dim() != 2 || ca_in.size(1) != 3)
    throw Error(fmt::format("chain_trace_energy: ca has shape {}, expected [N, 3]", c10::str(ca_in.sizes())));
  const int64_t n = ca_in.size(0);
  const auto ca_t = ca_in.to(torch::kFloat64).contiguous();
  const double* raw = ca_t.data_ptr<double>();
  std::vector<Vec3> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = {raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]};
  std::vector<Vec3> g(static_cast<size_t>(n), Vec3{0, 0, 0});
  double e = 0;
  // bond
  for (int64_t i = 0; i + 1 < n; ++i) {
    const Vec3 d = sub(p[i + 1], p[i]);
    const double len = std::sqrt(dot(d, d) + 1e-12), dev = len - kCaCa;
    e += weights.bond * dev * dev;
    const Vec3 f = scale(d, 2 * weights.bond * dev / len);
    add_to(g[i + 1], f);
    add_to(g[i], f, -1.0);
  }
  if (n >= 4) {
    // clash
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 2; j < n; ++j) {
        const Vec3 d = sub(p[j], p[i]);
        const double len = std::sqrt(dot(d, d) + 1e-12);
        if (len >= kClashCaCa) continue;
        const double over = kClashCaCa - len;
        e += weights.clash * over * over;
        const Vec3 f = scale(d, -2 * weights.clash * over / len);
        add_to(g[j], f);
        add_to(g[i], f, -1.0);
      }
    // Virtual angles theta(m) at residue m + 1 (m = 0..n-3) and dihedrals tau(m) over m..m+3 (m =
    // 0..n-4), with dE/dtheta and dE/dtau accumulated, then pushed to the atoms.
    const int64_t nt = n - 2, nd = n - 3;
    std::vector<double> theta(static_cast<size_t>(nt)), tau(static_cast<size_t>(nd));
    std::vector<std::array<Vec3, 3>> dtheta(static_cast<size_t>(nt));
    std::vector<std::array<Vec3, 4>> dtau(static_cast<size_t>(nd));
    for (int64_t m = 0; m < nt; ++m) theta[m] = angle_with_gradient(p[m], p[m + 1], p[m + 2], dtheta[m].data());
    for (int64_t m = 0; m < nd; ++m) tau[m] = dihedral_with_gradient(p[m], p[m + 1], p[m + 2], p[m + 3], dtau[m].data());
    std::vector<double> e_theta(static_cast<size_t>(nt), 0.0), e_tau(static_cast<size_t>(nd), 0.0);
    const auto tt = potential.theta_tau.energy.contiguous(), pp = potential.tau_tau.energy.contiguous();
    for (int64_t m = 0; m < nd; ++m) {
      double d0 = 0, d1 = 0;
      e += weights.local * table_energy(potential.theta_tau, tt.data_ptr<double>(), theta[m], tau[m], d0, d1);
      e_theta[m] += weights.local * d0;
      e_tau[m] += weights.local * d1;
    }
    for (int64_t m = 0; m + 1 < nd; ++m) {
      double d0 = 0, d1 = 0;
      e += weights.local * table_energy(potential.tau_tau, pp.data_ptr<double>(), tau[m], tau[m + 1], d0, d1);
      e_tau[m] += weights.local * d0;
      e_tau[m + 1] += weights.local * d1;
    }
    if (ss_in.defined() && weights.secondary_structure > 0) {
      if (ss_in.dim() != 2 || ss_in.size(0) != n || ss_in.size(1) != 3)
        throw Error(fmt::format("chain_trace_energy: ss has shape {}, expected [{}, 3]", c10::str(ss_in.sizes()), n));
      const auto ss_t = ss_in.to(torch::kFloat64).contiguous();
      const double* ss = ss_t.data_ptr<double>();
      const double k = weights.secondary_structure;
      for (const auto& [state, geo] : {std::pair{0, kHelixGeometry}, std::pair{1, kStrandGeometry}}) {
        for (int64_t m = 0; m < nt; ++m) {  // residue m + 1
          const double in = ss[3 * (m + 1) + state];
          if (in == 0) continue;
          const double z = (theta[m] - geo.theta0) / geo.sigma;
          e += k * 0.5 * z * z * in;
          e_theta[m] += k * in * z / geo.sigma;
        }
        for (int64_t m = 0; m < nd; ++m) {  // residues m + 1, m + 2
          const double both = ss[3 * (m + 1) + state] * ss[3 * (m + 2) + state];
          if (both == 0) continue;
          const double dt = (tau[m] - geo.tau0) / kDegPerRad;
          e += k * geo.kappa * (1 - std::cos(dt)) * both;
          e_tau[m] += k * geo.kappa * std::sin(dt) / kDegPerRad * both;
        }
      }
    }
    for (int64_t m = 0; m < nt; ++m)
      for (int a = 0; a < 3; ++a) add_to(g[m + a], dtheta[m][a], e_theta[m]);
    for (int64_t m = 0; m < nd; ++m)
      for (int a = 0; a < 4; ++a) add_to(g[m + a], dtau[m][a], e_tau[m]);
  }
  if (weights.compactness > 0 && n >= 4) {
    Vec3 centre{0, 0, 0};
    for (const auto& x : p) add_to(centre, x, 1.0 / static_cast<double>(n));
    double sum = 0;
    for (const auto& x : p) sum += dot(sub(x, centre), sub(x, centre));
    const double rg = std::sqrt(sum / static_cast<double>(n) + 1e-12);
    const double over = rg - kRgGuideUpper * kRgPrefactor * std::pow(static_cast<double>(n), kRgExponent);
    if (over > 0) {
      e += weights.compactness * static_cast<double>(n) * over * over;
      // dE/dx_i = 2 k_rg N over dRg/dx_i, dRg/dx_i = (x_i - centre) / (N Rg) (the centre's own
      // dependence sums to zero).
      const double k = 2 * weights.compactness * over / rg;
      for (int64_t i = 0; i < n; ++i) add_to(g[i], sub(p[i], centre), k);
    }
  }
  if (gradient) {
    *gradient = torch::empty({n, 3}, torch::kFloat64);
    double* out = gradient->data_ptr<double>();
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) out[3 * i + c] = g[i][c];
  }
  return e;
}

torch::Tensor refine_trace(const torch::Tensor& ca, const std::vector<int64_t>& lengths, const CaPotential& potential,
                           const TraceRefinement& options, const torch::Tensor& ss) {
  if (ca.dim() != 3 || ca.size(2) != 3 || static_cast<size_t>(ca.size(0)) != lengths.size())
    throw Error(fmt::format("refine_trace: ca has shape {}, expected [{}, N, 3]", c10::str(ca.sizes()), lengths.size()));
  auto y = ca.to(torch::kFloat64).detach().clone().contiguous();
  const auto ss64 = ss.defined() ? ss.to(torch::kFloat64).contiguous() : torch::Tensor();
  // Chain by chain (microseconds per chain and iteration: no thread pool needed, and none to
  // stall on a loaded machine): its first lengths[b] residues move; padding stays.
  for (int64_t b = 0; b < ca.size(0); ++b) {
    const int64_t n = std::min<int64_t>(lengths[static_cast<size_t>(b)], ca.size(1));
    if (n < 1) continue;
    auto chain = y[b].narrow(0, 0, n);
    const torch::Tensor chain_ss = ss64.defined() ? ss64[b].narrow(0, 0, n) : torch::Tensor();
    torch::Tensor g;
    for (int64_t k = 0; k < options.iterations; ++k) {
      chain_trace_energy(chain, potential, options.weights, chain_ss, &g);
      const double* gd = g.data_ptr<double>();
      auto acc = chain.accessor<double, 2>();
      for (int64_t i = 0; i < n; ++i) {
        double m[3], norm2 = 0;
        for (int c = 0; c < 3; ++c) {
          m[c] = std::isfinite(gd[3 * i + c]) ? gd[3 * i + c] * options.rate : 0.0;
          norm2 += m[c] * m[c];
        }
        // At most max_move per residue and iteration: a far-off estimate moves, it does not jump.
        const double limit = options.max_move / std::max(std::sqrt(norm2), options.max_move);
        for (int c = 0; c < 3; ++c) acc[i][c] -= m[c] * limit;
      }
    }
  }
  return y.to(ca.scalar_type());
}

}  // namespace dit::protein
