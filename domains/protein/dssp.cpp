#include "domains/protein/dssp.h"

#include <dit/error.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <vector>

namespace dit::protein {
namespace {

constexpr double kCoupling = 0.084 * 332.0;      // q1 q2 f, Kabsch & Sander 1983 (27.888)
constexpr double kMinHBondEnergy = -9.9;         // DSSP: lower clamp
constexpr double kMaxHBondEnergy = -0.5;         // a bond when E < -0.5 kcal/mol
constexpr double kMinimalDistance = 0.5;         // DSSP: closer atoms give -9.9
constexpr double kMinimalCADistance = 9.0;       // DSSP: energies only for CA-CA < 9 A
constexpr double kMaxPeptideBondLength = 2.5;    // DSSP: C-N beyond this is a chain break
constexpr double kBendAngle = 70.0;              // Kabsch & Sander: bend when kappa > 70 deg

double dist(const Vec3& a, const Vec3& b) {
  const double x = a[0] - b[0], y = a[1] - b[1], z = a[2] - b[2];
  return std::sqrt(x * x + y * y + z * z);
}

struct HBond {
  int partner = -1;
  double energy = 0;
};

enum class HelixFlag { None, Start, End, StartAndEnd, Middle };
enum class BridgeType { None, Parallel, Antiparallel };

struct Residue {
  Vec3 n, h, ca, c, o;
  bool proline = false;
  HBond acceptor[2];  // as donor (N-H): the two best acceptors
  HBond donor[2];     // as acceptor (C=O): the two best donors
  HelixFlag helix[3] = {HelixFlag::None, HelixFlag::None, HelixFlag::None};  // n = 3, 4, 5
  double kappa = 360;
  char ss = '-';
};

void keep_best(HBond (&list)[2], int partner, double energy) {
  if (energy < list[0].energy) {
    list[1] = list[0];
    list[0] = {partner, energy};
  } else if (energy < list[1].energy) {
    list[1] = {partner, energy};
  }
}

struct Bridge {
  BridgeType type;
  std::deque<uint32_t> i, j;
};

}  // namespace

double hbond_energy(const Vec3& n, const Vec3& h, const Vec3& c, const Vec3& o) {
  return kCoupling * (1 / dist(o, n) + 1 / dist(c, h) - 1 / dist(o, h) - 1 / dist(c, n));
}

char three_state(char s) {
  if (s == 'H' || s == 'G' || s == 'I') return 'H';
  if (s == 'E' || s == 'B') return 'E';
  return '-';
}

SecondaryStructure assign_secondary_structure(const Backbone& bb) {
  validate(bb);
  const uint32_t n = static_cast<uint32_t>(bb.size());
  std::vector<Residue> r(n);
  // breaks[k]: number of chain breaks between residues 0..k (break between k-1 and k counts at k).
  std::vector<uint32_t> breaks(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    r[i].n = bb.n[i];
    r[i].ca = bb.ca[i];
    r[i].c = bb.c[i];
    r[i].o = bb.o[i];
    r[i].proline = bb.sequence[i] == 'P';
    r[i].h = r[i].n;
    if (i > 0) breaks[i] = breaks[i - 1] + (dist(bb.c[i - 1], bb.n[i]) > kMaxPeptideBondLength ? 1 : 0);
    if (i > 0 && !r[i].proline && breaks[i] == breaks[i - 1]) {
      const Vec3& pc = bb.c[i - 1];
      const Vec3& po = bb.o[i - 1];
      const double d = dist(pc, po);
      if (d > 0)
        for (int k = 0; k < 3; ++k) r[i].h[k] += (pc[k] - po[k]) / d;
    }
  }
  auto no_break = [&](uint32_t a, uint32_t b) { return breaks[std::max(a, b)] == breaks[std::min(a, b)]; };

  // H-bond energies (donor i N-H ... acceptor j C=O).
  auto energy = [&](uint32_t d, uint32_t a) {
    Residue& donor = r[d];
    Residue& acc = r[a];
    double e = 0;
    if (!donor.proline) {
      const double ho = dist(donor.h, acc.o), hc = dist(donor.h, acc.c), nc = dist(donor.n, acc.c),
                   no = dist(donor.n, acc.o);
      if (ho < kMinimalDistance || hc < kMinimalDistance || nc < kMinimalDistance || no < kMinimalDistance)
        e = kMinHBondEnergy;
      else
        e = kCoupling * (1 / no + 1 / hc - 1 / ho - 1 / nc);
      if (e < kMinHBondEnergy) e = kMinHBondEnergy;
    }
    keep_best(donor.acceptor, static_cast<int>(a), e);
    keep_best(acc.donor, static_cast<int>(d), e);
  };
  for (uint32_t i = 0; i + 1 < n; ++i)
    for (uint32_t j = i + 1; j < n; ++j)
      if (dist(r[i].ca, r[j].ca) < kMinimalCADistance) {
        energy(i, j);
        if (j != i + 1) energy(j, i);
      }
  // TestBond(a, b): a's N-H is bonded to b's C=O.
  auto bond = [&](uint32_t a, uint32_t b) {
    const Residue& x = r[a];
    return (x.acceptor[0].partner == static_cast<int>(b) && x.acceptor[0].energy < kMaxHBondEnergy) ||
           (x.acceptor[1].partner == static_cast<int>(b) && x.acceptor[1].energy < kMaxHBondEnergy);
  };

  // Bridges and ladders (Kabsch & Sander Fig. 2; DSSP CalculateBetaSheets).
  auto test_bridge = [&](uint32_t i, uint32_t j) {
    const uint32_t a = i - 1, b = i, c = i + 1, d = j - 1, e = j, f = j + 1;
    if (!no_break(a, c) || !no_break(d, f)) return BridgeType::None;
    if ((bond(c, e) && bond(e, a)) || (bond(f, b) && bond(b, d))) return BridgeType::Parallel;
    if ((bond(c, d) && bond(f, a)) || (bond(e, b) && bond(b, e))) return BridgeType::Antiparallel;
    return BridgeType::None;
  };
  std::vector<Bridge> bridges;
  for (uint32_t i = 1; i + 4 < n; ++i) {
    for (uint32_t j = i + 3; j + 1 < n; ++j) {
      const BridgeType type = test_bridge(i, j);
      if (type == BridgeType::None) continue;
      bool found = false;
      for (Bridge& br : bridges) {
        if (type != br.type || i != br.i.back() + 1) continue;
        if (type == BridgeType::Parallel && br.j.back() + 1 == j) {
          br.i.push_back(i);
          br.j.push_back(j);
          found = true;
          break;
        }
        if (type == BridgeType::Antiparallel && br.j.front() - 1 == j) {
          br.i.push_back(i);
          br.j.push_front(j);
          found = true;
          break;
        }
      }
      if (!found) bridges.push_back(Bridge{type, {i}, {j}});
    }
  }
  std::stable_sort(bridges.begin(), bridges.end(),
                   [](const Bridge& x, const Bridge& y) { return x.i.front() < y.i.front(); });
  // Ladders joined across bulges; unsigned differences as in DSSP (a negative gap never joins).
  for (size_t x = 0; x < bridges.size(); ++x) {
    for (size_t y = x + 1; y < bridges.size(); ++y) {
      const uint32_t ibi = bridges[x].i.front(), iei = bridges[x].i.back();
      const uint32_t jbi = bridges[x].j.front(), jei = bridges[x].j.back();
      const uint32_t ibj = bridges[y].i.front(), iej = bridges[y].i.back();
      const uint32_t jbj = bridges[y].j.front(), jej = bridges[y].j.back();
      if (bridges[x].type != bridges[y].type || !no_break(std::min(ibi, ibj), std::max(iei, iej)) ||
          !no_break(std::min(jbi, jbj), std::max(jei, jej)) || ibj - iei >= 6 || (iei >= ibj && ibi <= iej))
        continue;
      bool bulge;
      if (bridges[x].type == BridgeType::Parallel)
        bulge = (jbj - jei < 6 && ibj - iei < 3) || (jbj - jei < 3);
      else
        bulge = (jbi - jej < 6 && ibj - iei < 3) || (jbi - jej < 3);
      if (!bulge) continue;
      bridges[x].i.insert(bridges[x].i.end(), bridges[y].i.begin(), bridges[y].i.end());
      if (bridges[x].type == BridgeType::Parallel)
        bridges[x].j.insert(bridges[x].j.end(), bridges[y].j.begin(), bridges[y].j.end());
      else
        bridges[x].j.insert(bridges[x].j.begin(), bridges[y].j.begin(), bridges[y].j.end());
      bridges.erase(bridges.begin() + static_cast<std::ptrdiff_t>(y));
      --y;
    }
  }
  for (const Bridge& br : bridges) {
    const char ss = br.i.size() > 1 ? 'E' : 'B';
    for (uint32_t k = br.i.front(); k <= br.i.back(); ++k)
      if (r[k].ss != 'E') r[k].ss = ss;
    for (uint32_t k = br.j.front(); k <= br.j.back(); ++k)
      if (r[k].ss != 'E') r[k].ss = ss;
  }

  // n-turns (n = 3, 4, 5): an H-bond from the N-H of i+n to the C=O of i.
  for (int t = 0; t < 3; ++t) {
    const uint32_t stride = static_cast<uint32_t>(t) + 3;
    for (uint32_t i = 0; i + stride < n; ++i) {
      if (!no_break(i, i + stride) || !bond(i + stride, i)) continue;
      r[i + stride].helix[t] = HelixFlag::End;
      for (uint32_t j = i + 1; j < i + stride; ++j)
        if (r[j].helix[t] == HelixFlag::None) r[j].helix[t] = HelixFlag::Middle;
      r[i].helix[t] = r[i].helix[t] == HelixFlag::End ? HelixFlag::StartAndEnd : HelixFlag::Start;
    }
  }
  auto start = [&](uint32_t i, int t) {
    return r[i].helix[t] == HelixFlag::Start || r[i].helix[t] == HelixFlag::StartAndEnd;
  };
  // Bend: kappa = angle between CA(i-2)->CA(i) and CA(i)->CA(i+2).
  for (uint32_t i = 2; i + 2 < n; ++i) {
    if (!no_break(i - 2, i + 2)) continue;
    Vec3 u, v;
    for (int k = 0; k < 3; ++k) {
      u[k] = r[i].ca[k] - r[i - 2].ca[k];
      v[k] = r[i + 2].ca[k] - r[i].ca[k];
    }
    const double nu = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    const double nv = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (nu == 0 || nv == 0) continue;
    const double ck = std::clamp((u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv), -1.0, 1.0);
    r[i].kappa = std::acos(ck) * 180.0 / M_PI;
  }
  // Minimal helices: two consecutive n-turns at i-1 and i -> residues i .. i+n-1.
  for (uint32_t i = 1; i + 4 < n; ++i)
    if (start(i, 1) && start(i - 1, 1))
      for (uint32_t j = i; j <= i + 3; ++j) r[j].ss = 'H';
  for (uint32_t i = 1; i + 3 < n; ++i) {
    if (!(start(i, 0) && start(i - 1, 0))) continue;
    bool empty = true;
    for (uint32_t j = i; empty && j <= i + 2; ++j) empty = r[j].ss == '-' || r[j].ss == 'G';
    if (empty)
      for (uint32_t j = i; j <= i + 2; ++j) r[j].ss = 'G';
  }
  for (uint32_t i = 1; i + 5 < n; ++i) {
    if (!(start(i, 2) && start(i - 1, 2))) continue;
    bool empty = true;
    for (uint32_t j = i; empty && j <= i + 4; ++j) empty = r[j].ss == '-' || r[j].ss == 'I' || r[j].ss == 'H';
    if (empty)
      for (uint32_t j = i; j <= i + 4; ++j) r[j].ss = 'I';
  }
  for (uint32_t i = 1; i + 1 < n; ++i) {
    if (r[i].ss != '-') continue;
    bool turn = false;
    for (int t = 0; t < 3 && !turn; ++t) {
      const uint32_t stride = static_cast<uint32_t>(t) + 3;
      for (uint32_t k = 1; k < stride && !turn; ++k) turn = i >= k && start(i - k, t);
    }
    if (turn)
      r[i].ss = 'T';
    else if (r[i].kappa != 360 && r[i].kappa > kBendAngle)
      r[i].ss = 'S';
  }

  SecondaryStructure out;
  out.dssp.reserve(n);
  size_t helix = 0, strand = 0;
  for (const Residue& x : r) {
    out.dssp.push_back(x.ss);
    const char s = three_state(x.ss);
    helix += s == 'H';
    strand += s == 'E';
  }
  if (n > 0) {
    out.helix = static_cast<double>(helix) / n;
    out.strand = static_cast<double>(strand) / n;
    out.coil = 1.0 - out.helix - out.strand;
  }
  return out;
}

}  // namespace dit::protein
