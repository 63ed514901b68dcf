// CA trace -> N, CA, C, O, CB (see rebuild.h for the frame, the features and the table layout).
#include "domains/protein/rebuild.h"

#include <dit/error.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace dit::protein {
namespace {


// Any unit vector perpendicular to v (v non-zero).
Vec3 perpendicular(const Vec3& v) {
  Vec3 t = std::fabs(v[0]) < 0.9 * norm(v) ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
  Vec3 p = cross(v, t);
  return scale(p, 1.0 / norm(p));
}

// unit(v), or `fallback` when v is (numerically) zero.
Vec3 unit_or(const Vec3& v, const Vec3& fallback) {
  double l = norm(v);
  return l > 1e-9 ? scale(v, 1.0 / l) : fallback;
}

double angle_deg(const Vec3& p, const Vec3& q, const Vec3& r) {
  Vec3 u = unit_or(sub(p, q), {1, 0, 0}), v = unit_or(sub(r, q), {-1, 0, 0});
  return std::acos(std::max(-1.0, std::min(1.0, dot(u, v)))) * kDegPerRad;
}

// IUPAC dihedral p0-p1-p2-p3 in degrees, (-180, 180].
double dihedral_deg(const Vec3& p0, const Vec3& p1, const Vec3& p2, const Vec3& p3) {
  Vec3 b0 = sub(p0, p1), b1 = unit_or(sub(p2, p1), {1, 0, 0}), b2 = sub(p3, p2);
  Vec3 v = sub(b0, scale(b1, dot(b0, b1)));
  Vec3 w = sub(b2, scale(b1, dot(b2, b1)));
  return std::atan2(dot(cross(b1, v), w), dot(v, w)) * kDegPerRad;
}

// NeRF: the point D with |CD| = r, angle BCD = theta, dihedral ABCD = tau (degrees).
Vec3 place(const Vec3& a, const Vec3& b, const Vec3& c, double r, double theta, double tau) {
  Vec3 bc = unit_or(sub(c, b), {1, 0, 0});
  Vec3 nrm = cross(sub(b, a), bc);
  nrm = norm(nrm) > 1e-9 ? scale(nrm, 1.0 / norm(nrm)) : perpendicular(bc);
  Vec3 m = cross(nrm, bc);
  double th = theta / kDegPerRad, t = tau / kDegPerRad;
  // In the frame (bc, m, nrm): d = r (-cos th, sin th cos t, sin th sin t).
  Vec3 d = add(add(scale(bc, -r * std::cos(th)), scale(m, r * std::sin(th) * std::cos(t))),
               scale(nrm, r * std::sin(th) * std::sin(t)));
  return add(c, d);
}

const std::vector<double>& lookup(const RebuildTable::Group& group, const double (&f)[RebuildTable::kNumFeatures]) {
  for (const auto& level : group.levels) {
    int64_t key = 0;
    for (const auto& ax : level.axes) {
      auto b = static_cast<int64_t>(std::floor((f[ax.feature] - ax.lo) / ax.width));
      if (ax.feature == RebuildTable::kTauPrev || ax.feature == RebuildTable::kTau) {
        b = ((b % ax.bins) + ax.bins) % ax.bins;
      } else {
        b = std::max<int64_t>(0, std::min<int64_t>(ax.bins - 1, b));
      }
      key = key * ax.bins + b;
    }
    auto it = level.values.find(key);
    if (it != level.values.end()) return it->second;
  }
  // load_rebuild_table guarantees a global-mean level; an empty table is a programming error.
  throw Error("rebuild table: a group has no global-mean level (not loaded by load_rebuild_table?)");
}

}  // namespace

Vec3 ideal_cb(const Vec3& n, const Vec3& ca, const Vec3& c) {
  Vec3 b = sub(ca, n), cc = sub(c, ca);
  Vec3 a = cross(b, cc);
  return add(add(add(scale(a, -0.58273431), scale(b, 0.56802827)), scale(cc, -0.54067466)), ca);
}

RebuildTable load_rebuild_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the rebuild table (expected data/protein/rebuild-table.txt, "
                       "written by scripts/protein/make-rebuild-table.py)");
  RebuildTable table;
  table.source = path;
  std::string line;
  int line_no = 0;
  auto fail = [&](const std::string& what) -> Error {
    return Error(path + ":" + std::to_string(line_no) + ": " + what);
  };
  // The next non-comment, non-blank line split into words; false at end of file.
  auto next = [&](std::istringstream& words) {
    while (std::getline(in, line)) {
      ++line_no;
      auto first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos || line[first] == '#') continue;
      words.clear();
      words.str(line);
      return true;
    }
    return false;
  };
  std::istringstream w;
  if (!next(w)) throw fail("empty file: expected the header 'dit-rebuild-table 1'");
  {
    std::string magic;
    int version = 0;
    if (!(w >> magic >> version) || magic != "dit-rebuild-table")
      throw fail("expected the header 'dit-rebuild-table 1', got '" + line + "'");
    if (version != 1) throw fail("unsupported table version " + std::to_string(version) + " (expected 1)");
  }
  bool have_n = false, have_co = false, have_end = false;
  while (next(w)) {
    std::string word;
    w >> word;
    if (word == "end") {
      have_end = true;
      break;
    }
    if (word != "group") throw fail("expected 'group NAME NVALUES NLEVELS' or 'end', got '" + word + "'");
    std::string name;
    int nvalues = 0, nlevels = 0;
    if (!(w >> name >> nvalues >> nlevels)) throw fail("group: expected 'group NAME NVALUES NLEVELS'");
    RebuildTable::Group* group = nullptr;
    if (name == "N") {
      group = &table.n;
      have_n = true;
      if (nvalues != 3) throw fail("group N: expected 3 values per bin (x y z of N), got " + std::to_string(nvalues));
    } else if (name == "CO") {
      group = &table.co;
      have_co = true;
      if (nvalues != 6) throw fail("group CO: expected 6 values per bin (C then O), got " + std::to_string(nvalues));
    } else {
      throw fail("unknown group '" + name + "' (expected N or CO)");
    }
    if (nlevels < 1) throw fail("group " + name + ": expected at least one level");
    group->values = nvalues;
    group->levels.clear();
    for (int l = 0; l < nlevels; ++l) {
      if (!next(w)) throw fail("group " + name + ": end of file before level " + std::to_string(l));
      RebuildTable::Level level;
      int naxes = 0;
      if (!(w >> word >> naxes) || word != "level" || naxes < 0 || naxes > RebuildTable::kNumFeatures)
        throw fail("group " + name + ": expected 'level NAXES ...' with 0 <= NAXES <= 5");
      int64_t total = 1;
      for (int a = 0; a < naxes; ++a) {
        RebuildTable::Axis ax;
        std::string feat;
        if (!(w >> feat >> ax.lo >> ax.width >> ax.bins))
          throw fail("level axis " + std::to_string(a) + ": expected 'FEATURE LO WIDTH NBINS'");
        static const char* names[] = {"theta_prev", "theta", "theta_next", "tau_prev", "tau"};
        int f = 0;
        while (f < RebuildTable::kNumFeatures && feat != names[f]) ++f;
        if (f == RebuildTable::kNumFeatures)
          throw fail("level axis " + std::to_string(a) + ": unknown feature '" + feat +
                     "' (expected theta_prev, theta, theta_next, tau_prev or tau)");
        ax.feature = static_cast<RebuildTable::Feature>(f);
        if (!(ax.width > 0) || ax.bins < 1 || ax.bins > 3600)
          throw fail("level axis '" + feat + "': expected WIDTH > 0 and 1 <= NBINS <= 3600");
        total *= ax.bins;
        level.axes.push_back(ax);
      }
      int64_t rows = 0;
      if (!(w >> word >> rows) || word != "bins" || rows < 0) throw fail("level: expected 'bins NROWS' after the axes");
      for (int64_t r = 0; r < rows; ++r) {
        if (!next(w)) throw fail("level: end of file after " + std::to_string(r) + " of " + std::to_string(rows) + " bins");
        int64_t index = 0, count = 0;
        std::vector<double> values(nvalues);
        if (!(w >> index >> count)) throw fail("bin: expected 'INDEX COUNT VALUES...'");
        if (index < 0 || index >= total)
          throw fail("bin index " + std::to_string(index) + " outside the level's " + std::to_string(total) + " bins");
        for (auto& v : values)
          if (!(w >> v) || !std::isfinite(v)) throw fail("bin " + std::to_string(index) + ": expected " +
                                                         std::to_string(nvalues) + " finite values");
        if (w >> word) throw fail("bin " + std::to_string(index) + ": extra field '" + word + "'");
        if (!level.values.emplace(index, std::move(values)).second)
          throw fail("bin index " + std::to_string(index) + " repeated");
      }
      group->levels.push_back(std::move(level));
    }
    const auto& last = group->levels.back();
    if (!last.axes.empty() || last.values.size() != 1)
      throw fail("group " + name + ": the last level must be the global mean ('level 0 bins 1')");
  }
  if (!have_end) throw fail("missing 'end' (truncated file?)");
  if (!have_n || !have_co) throw fail(std::string("missing group ") + (have_n ? "CO" : "N"));
  return table;
}

Backbone rebuild_backbone(const std::vector<Vec3>& ca, const RebuildTable& table) {
  Backbone out;
  const size_t L = ca.size();
  out.ca = ca;
  out.sequence.assign(L, 'A');
  out.n.resize(L);
  out.c.resize(L);
  out.o.resize(L);
  out.cb.resize(L);
  if (L == 0) return out;
  for (size_t i = 0; i < L; ++i)
    for (double x : ca[i])
      if (!std::isfinite(x)) throw Error("rebuild_backbone: CA of residue " + std::to_string(i) + " is not finite");

  // Real trace, padded to >= 3 points for chains of 1-2 residues (virtual points, not output).
  std::vector<Vec3> core(ca);
  const double kDefaultTheta = 120.0, kDefaultTau = 50.0, kDefaultBond = 3.8;
  if (core.size() == 1) core.push_back(add(core[0], {kDefaultBond, 0, 0}));
  if (core.size() == 2) {
    Vec3 axis = unit_or(sub(core[1], core[0]), {1, 0, 0});
    Vec3 ref = add(core[0], perpendicular(axis));  // any point off the axis
    core.push_back(place(ref, core[0], core[1], kDefaultBond, kDefaultTheta, kDefaultTau));
  }
  const size_t M = core.size();
  // Two virtual CAs at each end continue the local geometry of the nearest real residues.
  auto tau_at = [&](size_t j) {  // dihedral core[j..j+3], or the default for short chains
    return M >= 4 ? dihedral_deg(core[j], core[j + 1], core[j + 2], core[j + 3]) : kDefaultTau;
  };
  std::vector<Vec3> ext(M + 4);
  for (size_t j = 0; j < M; ++j) ext[j + 2] = core[j];
  {
    double r = norm(sub(core[1], core[0])), th = angle_deg(core[0], core[1], core[2]), t = tau_at(0);
    if (r < 1e-6) r = kDefaultBond;
    ext[1] = place(ext[4], ext[3], ext[2], r, th, t);
    ext[0] = place(ext[3], ext[2], ext[1], r, th, t);
    double r2 = norm(sub(core[M - 1], core[M - 2])), th2 = angle_deg(core[M - 3], core[M - 2], core[M - 1]);
    double t2 = M >= 4 ? tau_at(M - 4) : kDefaultTau;
    if (r2 < 1e-6) r2 = kDefaultBond;
    ext[M + 2] = place(ext[M - 1], ext[M], ext[M + 1], r2, th2, t2);
    ext[M + 3] = place(ext[M], ext[M + 1], ext[M + 2], r2, th2, t2);
  }

  double f[RebuildTable::kNumFeatures];
  for (size_t i = 0; i < L; ++i) {
    const size_t k = i + 2;  // index into ext
    const Vec3 &a = ext[k - 2], &b = ext[k - 1], &c = ext[k], &d = ext[k + 1], &e = ext[k + 2];
    f[RebuildTable::kThetaPrev] = angle_deg(a, b, c);
    f[RebuildTable::kTheta] = angle_deg(b, c, d);
    f[RebuildTable::kThetaNext] = angle_deg(c, d, e);
    f[RebuildTable::kTauPrev] = dihedral_deg(a, b, c, d);
    f[RebuildTable::kTau] = dihedral_deg(b, c, d, e);
    // Frame: x = unit(u2 - u1), y = unit(u1 + u2), z = x cross y.
    Vec3 u1 = unit_or(sub(b, c), {-1, 0, 0}), u2 = unit_or(sub(d, c), {1, 0, 0});
    Vec3 x = unit_or(sub(u2, u1), perpendicular(u1));
    Vec3 y = sub(add(u1, u2), scale(x, dot(add(u1, u2), x)));
    y = unit_or(y, perpendicular(x));
    Vec3 z = cross(x, y);
    auto to_global = [&](const double* v) {
      return add(c, add(add(scale(x, v[0]), scale(y, v[1])), scale(z, v[2])));
    };
    const auto& nv = lookup(table.n, f);
    const auto& cov = lookup(table.co, f);
    // Bin means lie inside the bond-length spheres (averaging directions shortens the bonds, and
    // the CB formula needs ideal N-CA and CA-C): N and C go to the ideal distance from CA, O to
    // the ideal distance from C, along the looked-up directions (costs ~0.01 A of N/C/O RMSD).
    Vec3 nn = to_global(nv.data()), cc = to_global(cov.data()), oo = to_global(cov.data() + 3);
    out.n[i] = add(c, scale(unit_or(sub(nn, c), scale(x, -1)), kNCa));
    out.c[i] = add(c, scale(unit_or(sub(cc, c), x), kCaC));
    out.o[i] = add(out.c[i], scale(unit_or(sub(oo, cc), y), kCO));
    // The formula gives 1.53 A only for an ideal N-CA-C angle, which looked-up atoms need not
    // have: keep its direction, at 1.530 A.
    out.cb[i] = add(c, scale(unit_or(sub(ideal_cb(out.n[i], c, out.c[i]), c), y), kCaCb));
  }
  return out;
}

}  // namespace dit::protein
