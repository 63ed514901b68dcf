// The Vina-like score: pair terms, receptor grid maps and pose energies (see scoring.h).
#include "domains/docking/scoring.h"

#include <ATen/Parallel.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "domains/docking/cell_list.h"

namespace dit::docking {

namespace {
constexpr double kWGauss1 = -0.035579, kWGauss2 = -0.005156, kWRepulsion = 0.840245,
                 kWHydrophobic = -0.035069, kWHbond = -0.587439;

bool hbond_pair(XsType a, XsType b) {
  return (xs_is_donor(a) && xs_is_acceptor(b)) || (xs_is_donor(b) && xs_is_acceptor(a));
}
}  // namespace

double TermValues::weighted() const {
  return kWGauss1 * gauss1 + kWGauss2 * gauss2 + kWRepulsion * repulsion +
         kWHydrophobic * hydrophobic + kWHbond * hbond;
}
void TermValues::add(const TermValues& o) {
  gauss1 += o.gauss1, gauss2 += o.gauss2, repulsion += o.repulsion;
  hydrophobic += o.hydrophobic, hbond += o.hbond;
}

double pair_energy(XsType a, XsType b, double r, double* dedr, TermValues* terms) {
  if (r >= kScoreCutoff) {
    if (dedr) *dedr = 0;
    return 0;
  }
  const double d = r - xs_vdw_radius(a) - xs_vdw_radius(b);
  const double g1 = std::exp(-(d / 0.5) * (d / 0.5));
  const double g2 = std::exp(-((d - 3) / 2) * ((d - 3) / 2));
  double e = kWGauss1 * g1 + kWGauss2 * g2;
  double de = kWGauss1 * g1 * (-2 * d / 0.25) + kWGauss2 * g2 * (-(d - 3) / 2);
  double rep = 0, hyd = 0, hb = 0;
  if (d < 0) {
    rep = d * d;
    e += kWRepulsion * rep;
    de += kWRepulsion * 2 * d;
  }
  if (xs_is_hydrophobic(a) && xs_is_hydrophobic(b)) {
    if (d < 0.5) hyd = 1;
    else if (d < 1.5) hyd = 1.5 - d, de += kWHydrophobic * -1;
    e += kWHydrophobic * hyd;
  }
  if (hbond_pair(a, b)) {
    if (d < -0.7) hb = 1;
    else if (d < 0) hb = -d / 0.7, de += kWHbond * (-1 / 0.7);
    e += kWHbond * hb;
  }
  if (terms) {
    terms->gauss1 += g1, terms->gauss2 += g2, terms->repulsion += rep;
    terms->hydrophobic += hyd, terms->hbond += hb;
  }
  if (dedr) *dedr = de;
  return e;
}


namespace {
constexpr int kTypes = static_cast<int>(XsType::Count);

// [type a][type b][node][energy, d energy / d r]
std::vector<double> build_pair_tables() {
  std::vector<double> tables(static_cast<size_t>(kTypes * kTypes * kPairNodes) * 2);
  for (int a = 0; a < kTypes; ++a)
    for (int b = 0; b < kTypes; ++b) {
      double* table = &tables[static_cast<size_t>((a * kTypes + b) * kPairNodes) * 2];
      for (int k = 0; k < kPairNodes; ++k) {
        // The last node sits just inside the cutoff, where pair_energy is still defined.
        const double r = std::min(static_cast<double>(k) * kPairStep, kScoreCutoff - 1e-9);
        table[2 * k] = pair_energy(static_cast<XsType>(a), static_cast<XsType>(b), r, &table[2 * k + 1]);
      }
    }
  return tables;
}
}  // namespace

const double* pair_table(XsType a, XsType b) {
  static const std::vector<double> tables = build_pair_tables();
  return &tables[static_cast<size_t>(static_cast<int>(a) * kTypes + static_cast<int>(b)) * kPairNodes * 2];
}

struct GridMaps::Atoms {
  std::vector<Vec3> positions;
  std::vector<XsType> types;
  CellList cells;
  Atoms(std::vector<Vec3> p, std::vector<XsType> t)
      : positions(std::move(p)), types(std::move(t)), cells(positions, 4.0) {}
};

GridMaps::GridMaps(const Receptor& receptor, const Box& box, double spacing)
    : box_(box), spacing_(spacing) {
  box.validate("receptor grid box");
  for (int k = 0; k < 3; ++k) {
    n_[k] = static_cast<int>(std::ceil(box.size[k] / spacing)) + 1;
    origin_[k] = box.center[k] - 0.5 * (n_[k] - 1) * spacing;
  }
  std::vector<Vec3> positions;
  std::vector<XsType> rtypes;
  for (const auto& a : receptor.atoms) {
    if (a.atomic_number <= 1) continue;
    bool near = true;
    for (int k = 0; k < 3; ++k)
      near &= std::abs(a.position[k] - box.center[k]) <= 0.5 * box.size[k] + kScoreCutoff;
    if (!near) continue;
    positions.push_back(a.position);
    rtypes.push_back(a.type);
  }
  atoms_ = std::make_unique<Atoms>(std::move(positions), std::move(rtypes));
}

GridMaps::~GridMaps() = default;

int GridMaps::computed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(std::count_if(cache_.begin(), cache_.end(), [](const Map& m) { return m != nullptr; }));
}

std::vector<std::pair<XsType, GridMaps::Map>> GridMaps::maps(const std::vector<XsType>& types) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<XsType> distinct, missing;
  for (XsType t : types)
    if (std::find(distinct.begin(), distinct.end(), t) == distinct.end()) {
      distinct.push_back(t);
      if (!cache_[static_cast<int>(t)]) missing.push_back(t);
    }
  if (!missing.empty()) {
    const auto& positions = atoms_->positions;
    const auto& rtypes = atoms_->types;
    const size_t points = static_cast<size_t>(n_[0]) * n_[1] * n_[2];
    std::vector<std::vector<float>> computed(missing.size(), std::vector<float>(points, 0.f));
    at::parallel_for(0, n_[0], 1, [&](int64_t begin, int64_t end) {
      std::vector<double> e(missing.size());
      for (int64_t i = begin; i < end; ++i)
        for (int j = 0; j < n_[1]; ++j)
          for (int k = 0; k < n_[2]; ++k) {
            const Vec3 p{origin_[0] + i * spacing_, origin_[1] + j * spacing_, origin_[2] + k * spacing_};
            std::fill(e.begin(), e.end(), 0.0);
            atoms_->cells.near(p, kScoreCutoff, [&](int a) {
              const double dx = p[0] - positions[a][0], dy = p[1] - positions[a][1],
                           dz = p[2] - positions[a][2];
              const double r2 = dx * dx + dy * dy + dz * dz;
              if (r2 >= kScoreCutoff * kScoreCutoff) return;
              const double r = std::sqrt(r2);
              for (size_t t = 0; t < missing.size(); ++t)
                e[t] += tabulated_pair_energy(missing[t], rtypes[a], r, nullptr);
            });
            const size_t index = (static_cast<size_t>(i) * n_[1] + j) * n_[2] + k;
            for (size_t t = 0; t < missing.size(); ++t) computed[t][index] = static_cast<float>(e[t]);
          }
    });
    for (size_t t = 0; t < missing.size(); ++t)
      cache_[static_cast<int>(missing[t])] = std::make_shared<const std::vector<float>>(std::move(computed[t]));
  }
  std::vector<std::pair<XsType, Map>> out;
  for (XsType t : distinct) out.emplace_back(t, cache_[static_cast<int>(t)]);
  return out;
}

ReceptorGrid::ReceptorGrid(const GridMaps& maps, const std::vector<XsType>& types)
    : box_(maps.box()), origin_(maps.origin()), spacing_(maps.spacing()), n_(maps.points()) {
  slot_.fill(-1);
  for (auto& [type, map] : maps.maps(types)) {
    slot_[static_cast<int>(type)] = static_cast<int>(maps_.size());
    maps_.push_back(std::move(map));
  }
}

ReceptorGrid::ReceptorGrid(const Receptor& receptor, const Box& box, const std::vector<XsType>& types,
                           double spacing)
    : ReceptorGrid(GridMaps(receptor, box, spacing), types) {}

double ReceptorGrid::energy(XsType type, const Vec3& p, Vec3* grad) const {
  const int slot = slot_[static_cast<int>(type)];
  if (slot < 0) throw Error(fmt::format("receptor grid: no map for atom type {}", xs_name(type)));
  const auto& map = *maps_[slot];
  double penalty = 0;
  Vec3 g_pen{0, 0, 0};
  double f[3];
  int i0[3];
  for (int k = 0; k < 3; ++k) {
    double u = (p[k] - origin_[k]) / spacing_;
    const double hi = n_[k] - 1;
    if (u < 0 || u > hi) {
      const double excess = (u < 0 ? u : u - hi) * spacing_;  // signed, angstrom
      penalty += kOutsidePenalty * excess * excess;
      g_pen[k] = 2 * kOutsidePenalty * excess;
      u = std::clamp(u, 0.0, hi);
    }
    i0[k] = std::min(static_cast<int>(u), n_[k] - 2);
    f[k] = u - i0[k];
  }
  auto at = [&](int a, int b, int c) {
    return static_cast<double>(map[(static_cast<size_t>(i0[0] + a) * n_[1] + (i0[1] + b)) * n_[2] + (i0[2] + c)]);
  };
  double v[2][2][2];
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c) v[a][b][c] = at(a, b, c);
  const double fx = f[0], fy = f[1], fz = f[2];
  auto lerp = [](double x0, double x1, double t) { return x0 + (x1 - x0) * t; };
  double c00 = lerp(v[0][0][0], v[1][0][0], fx), c01 = lerp(v[0][0][1], v[1][0][1], fx);
  double c10 = lerp(v[0][1][0], v[1][1][0], fx), c11 = lerp(v[0][1][1], v[1][1][1], fx);
  double c0 = lerp(c00, c10, fy), c1 = lerp(c01, c11, fy);
  const double e = lerp(c0, c1, fz);
  if (grad) {
    // Partial derivatives of the trilinear interpolant (per grid unit), then per angstrom.
    double dx = 0, dy = 0, dz = c1 - c0;
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c) {
        const double wy = b ? fy : 1 - fy, wz = c ? fz : 1 - fz;
        dx += (v[1][b][c] - v[0][b][c]) * wy * wz;
      }
    for (int a = 0; a < 2; ++a)
      for (int c = 0; c < 2; ++c) {
        const double wx = a ? fx : 1 - fx, wz = c ? fz : 1 - fz;
        dy += (v[a][1][c] - v[a][0][c]) * wx * wz;
      }
    // Outside the grid the interpolant is flat along that axis; the penalty pulls back in.
    const double inv = 1.0 / spacing_;
    const double d[3] = {dx * inv, dy * inv, dz * inv};
    for (int k = 0; k < 3; ++k) (*grad)[k] += (g_pen[k] != 0 ? 0 : d[k]) + g_pen[k];
  }
  return e + penalty;
}

PoseEnergy pose_energy(const LigandTopology& ligand, const ReceptorGrid& grid, const Pose& pose,
                       PoseGradient* gradient) {
  const auto x = ligand.coordinates(pose);
  std::vector<Vec3> g;
  if (gradient) g.assign(x.size(), Vec3{0, 0, 0});
  PoseEnergy e;
  for (size_t h = 0; h < ligand.heavy.size(); ++h) {
    const int a = ligand.heavy[h];
    e.inter += grid.energy(ligand.heavy_type[h], x[a], gradient ? &g[a] : nullptr);
  }
  for (const auto& [i, j] : ligand.intra_pairs) {
    const int a = ligand.heavy[i], b = ligand.heavy[j];
    const Vec3 r{x[a][0] - x[b][0], x[a][1] - x[b][1], x[a][2] - x[b][2]};
    const double dist = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    double dedr = 0;
    e.intra += read_pair_table(pair_table(ligand.heavy_type[i], ligand.heavy_type[j]), dist,
                               gradient ? &dedr : nullptr);
    if (gradient && dist > 1e-9)
      for (int k = 0; k < 3; ++k) {
        g[a][k] += dedr * r[k] / dist;
        g[b][k] -= dedr * r[k] / dist;
      }
  }
  if (gradient) *gradient = ligand.pose_gradient(pose, x, g);
  return e;
}

ScoreReport score_pose(const LigandTopology& ligand, const Receptor& receptor,
                       const std::vector<Vec3>& x) {
  ScoreReport report;
  for (const auto& r : receptor.atoms) {
    if (r.atomic_number <= 1) continue;
    for (size_t h = 0; h < ligand.heavy.size(); ++h) {
      const auto& p = x[ligand.heavy[h]];
      const double dx = p[0] - r.position[0], dy = p[1] - r.position[1], dz = p[2] - r.position[2];
      const double d2 = dx * dx + dy * dy + dz * dz;
      if (d2 >= kScoreCutoff * kScoreCutoff) continue;
      report.inter += pair_energy(ligand.heavy_type[h], r.type, std::sqrt(d2), nullptr, &report.inter_terms);
    }
  }
  for (const auto& [i, j] : ligand.intra_pairs) {
    const auto& a = x[ligand.heavy[i]];
    const auto& b = x[ligand.heavy[j]];
    const double d = std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                               (a[2] - b[2]) * (a[2] - b[2]));
    report.intra += pair_energy(ligand.heavy_type[i], ligand.heavy_type[j], d, nullptr);
  }
  report.affinity = report.inter / (1 + kRotatableWeight * ligand.num_rotatable());
  return report;
}

}  // namespace dit::docking
