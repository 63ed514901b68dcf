// Cell geometry, elements and compositions (dit/crystal.h).
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <gemmi/elem.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>

namespace dit::crystal {

namespace {
constexpr double kDeg = M_PI / 180.0;
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
}  // namespace

Mat3 lattice_matrix(const std::array<double, 6>& cell) {
  const double a = cell[0], b = cell[1], c = cell[2];
  const double ca = std::cos(cell[3] * kDeg), cb = std::cos(cell[4] * kDeg), cg = std::cos(cell[5] * kDeg);
  const double sg = std::sin(cell[5] * kDeg);
  const double cx = c * cb, cy = c * (ca - cb * cg) / sg;
  const double cz2 = c * c - cx * cx - cy * cy;
  return {Vec3{a, 0, 0}, Vec3{b * cg, b * sg, 0}, Vec3{cx, cy, cz2 > 0 ? std::sqrt(cz2) : std::nan("")}};
}

double cell_volume(const std::array<double, 6>& cell) {
  const double ca = std::cos(cell[3] * kDeg), cb = std::cos(cell[4] * kDeg), cg = std::cos(cell[5] * kDeg);
  const double s = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg;
  for (double v : cell)
    if (!std::isfinite(v)) return std::nan("");
  if (s <= 0 || cell[0] <= 0 || cell[1] <= 0 || cell[2] <= 0) return std::nan("");
  return cell[0] * cell[1] * cell[2] * std::sqrt(s);
}

std::array<double, 6> cell_parameters(const Mat3& m) {
  const double a = norm(m[0]), b = norm(m[1]), c = norm(m[2]);
  auto angle = [](const Vec3& u, const Vec3& v) {
    return std::acos(std::clamp(dot(u, v) / (norm(u) * norm(v)), -1.0, 1.0)) / kDeg;
  };
  return {a, b, c, angle(m[1], m[2]), angle(m[0], m[2]), angle(m[0], m[1])};
}

double periodic_distance(const Crystal& crystal, size_t i, size_t j) {
  const Mat3 m = lattice_matrix(crystal.cell);
  const double volume = cell_volume(crystal.cell);
  if (!std::isfinite(volume)) return std::nan("");
  Vec3 d{};
  for (int k = 0; k < 3; ++k) {
    d[k] = crystal.frac.at(j)[k] - crystal.frac.at(i)[k];
    d[k] -= std::round(d[k]);
  }
  auto cart = [&](const Vec3& f) {
    Vec3 r{};
    for (int k = 0; k < 3; ++k)
      for (int l = 0; l < 3; ++l) r[l] += f[k] * m[k][l];
    return r;
  };
  double best = i == j ? std::numeric_limits<double>::infinity() : norm(cart(d));
  // Every image within `best` lies within best / height_k cells along axis k (height: the
  // distance between the lattice planes spanned by the other two vectors).
  const double start = i == j ? std::max({crystal.cell[0], crystal.cell[1], crystal.cell[2]}) : best;
  int range[3];
  for (int k = 0; k < 3; ++k) {
    const double height = volume / norm(cross(m[(k + 1) % 3], m[(k + 2) % 3]));
    range[k] = std::min(8, static_cast<int>(std::ceil(start / height)));
  }
  for (int x = -range[0]; x <= range[0]; ++x)
    for (int y = -range[1]; y <= range[1]; ++y)
      for (int z = -range[2]; z <= range[2]; ++z) {
        if (i == j && x == 0 && y == 0 && z == 0) continue;
        best = std::min(best, norm(cart({d[0] + x, d[1] + y, d[2] + z})));
      }
  return best;
}

// ---- elements --------------------------------------------------------------------------------

namespace {
std::vector<ElementInfo> load_elements() {
  const std::string path = data_dir() + "/crystal/elements.txt";
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open the element table", path));
  std::vector<ElementInfo> table(kMaxZ + 1);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    ElementInfo e;
    std::string metal, states, chi, radius;
    if (!(fields >> e.z >> e.symbol >> metal >> states >> chi))
      throw Error(fmt::format("{}:{}: expected 'Z symbol is_metal oxidation_states electronegativity ...'", path, line_no));
    if (e.z < 1 || e.z > kMaxZ) throw Error(fmt::format("{}:{}: Z {} outside 1..{}", path, line_no, e.z, kMaxZ));
    e.metal = metal == "1" || metal == "True" || metal == "true";
    std::stringstream ss(states);
    for (std::string s; std::getline(ss, s, ',');)
      if (!s.empty()) e.oxidation_states.push_back(std::stoi(s));  // "0": none but 0 (noble gases)
    e.electronegativity = chi == "nan" ? std::nan("") : std::stod(chi);
    const gemmi::Element g(e.symbol.c_str());
    if (g.atomic_number() != e.z)
      throw Error(fmt::format("{}:{}: symbol {} is not element {}", path, line_no, e.symbol, e.z));
    e.mass = g.weight();
    e.covalent_radius = g.covalent_r();
    table[e.z] = std::move(e);
  }
  for (int z = 1; z <= kMaxZ; ++z)
    if (table[z].z != z) throw Error(fmt::format("{}: no line for element {}", path, z));
  return table;
}

const std::vector<ElementInfo>& elements() {
  static std::once_flag once;
  static std::vector<ElementInfo> table;
  std::call_once(once, [] { table = load_elements(); });
  return table;
}
}  // namespace

const ElementInfo& element(int z) {
  if (z < 1 || z > kMaxZ) throw Error(fmt::format("element {} outside 1..{}", z, kMaxZ));
  return elements()[z];
}

int atomic_number(const std::string& symbol) {
  for (int z = 1; z <= kMaxZ; ++z)
    if (elements()[z].symbol == symbol) return z;
  throw Error(fmt::format("unknown element '{}' (elements H..Pu)", symbol));
}

// ---- compositions ----------------------------------------------------------------------------

Composition parse_composition(const std::string& text, int atoms) {
  if (text.empty()) throw Error("composition: empty");
  Composition out;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isupper(static_cast<unsigned char>(text[i])))
      throw Error(fmt::format("composition '{}': expected an element symbol at position {}", text, i + 1));
    std::string symbol(1, text[i++]);
    while (i < text.size() && std::islower(static_cast<unsigned char>(text[i]))) symbol += text[i++];
    int z = 0;
    try {
      z = atomic_number(symbol);
    } catch (const Error& e) {
      throw Error(fmt::format("composition '{}': {}", text, e.what()));
    }
    int count = 1;
    if (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      size_t j = i;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j - i > 4) throw Error(fmt::format("composition '{}': count of {} too large", text, symbol));
      count = std::stoi(text.substr(i, j - i));
      i = j;
      if (count < 1) throw Error(fmt::format("composition '{}': count of {} must be >= 1", text, symbol));
    }
    out[z] += count;
  }
  int total = 0;
  for (auto& [z, n] : out) total += n;
  if (atoms > 0) {
    if (atoms % total != 0)
      throw Error(fmt::format("composition '{}' has {} atoms: --atoms {} is not a multiple", text, total, atoms));
    for (auto& [z, n] : out) n *= atoms / total;
    total = atoms;
  }
  if (total > kMaxAtoms)
    throw Error(fmt::format("composition '{}': {} atoms in the cell, more than {}", text, total, kMaxAtoms));
  return out;
}

std::string formula(const Composition& composition) {
  std::vector<std::pair<std::string, int>> parts;
  for (const auto& [z, n] : composition) parts.emplace_back(element(z).symbol, n);
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& [s, n] : parts) out += n == 1 ? s : s + std::to_string(n);
  return out;
}

Composition composition_of(const Crystal& crystal) {
  Composition c;
  for (int z : crystal.numbers) c[z] += 1;
  return c;
}

int charge_balance(const Composition& composition) {
  if (composition.empty()) return 0;
  bool all_metal = true;
  std::vector<std::pair<const std::vector<int>*, int>> terms;
  for (const auto& [z, n] : composition) {
    const auto& e = element(z);
    all_metal &= e.metal;
    terms.emplace_back(&e.oxidation_states, n);
  }
  if (all_metal) return 1;  // an alloy / intermetallic
  // SMACT's test: one common oxidation state per element; depth-first over the combinations
  // (a handful of elements with a few states each).
  std::function<bool(size_t, long)> search = [&](size_t k, long charge) {
    if (k == terms.size()) return charge == 0;
    for (int q : *terms[k].first)
      if (search(k + 1, charge + static_cast<long>(q) * terms[k].second)) return true;
    return false;
  };
  if (search(0, 0)) return 1;
  // Mixed valence: each atom its own common state (Fe3O4 = Fe(2+) Fe(3+)2 O4). The charges one
  // element's n atoms can sum to, element by element, as a set of reachable totals.
  std::set<long> totals = {0};
  for (const auto& [states, n] : terms) {
    if (states->empty()) return 0;
    std::set<long> element_sums = {0};
    for (int a = 0; a < n; ++a) {
      std::set<long> next;
      for (long v : element_sums)
        for (int q : *states) next.insert(v + q);
      element_sums.swap(next);
    }
    std::set<long> next;
    for (long t : totals)
      for (long v : element_sums) next.insert(t + v);
    totals.swap(next);
  }
  return totals.count(0) ? 2 : 0;
}

bool charge_neutral(const Composition& composition) { return charge_balance(composition) > 0; }

}  // namespace dit::crystal
