// The crystal DiT: token layout and model files (see model.h).
#include "domains/crystal/model.h"

#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <cmath>
#include <sstream>

namespace dit::crystal {

namespace {
int period_of(int z) {
  const int ends[] = {2, 10, 18, 36, 54, 86, 118};
  for (int p = 0; p < 7; ++p)
    if (z <= ends[p]) return p + 1;
  return 7;
}

std::string join6(const std::array<double, 6>& v) {
  return fmt::format("{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g}", v[0], v[1], v[2], v[3], v[4], v[5]);
}
std::array<double, 6> parse6(const std::string& text, const std::string& key, const std::string& source) {
  std::array<double, 6> out{};
  std::stringstream ss(text);
  std::string item;
  int k = 0;
  while (std::getline(ss, item, ',')) {
    if (k == 6) break;
    try {
      out[k++] = std::stod(item);
    } catch (const std::exception&) {
      k = -1;
      break;
    }
  }
  if (k != 6) throw Error(fmt::format("{}: metadata '{}' = '{}' is not six numbers", source, key, text));
  return out;
}
}  // namespace

torch::Tensor atom_features(int z) {
  const auto& e = element(z);
  auto f = torch::zeros({kTokenFeatures});
  f[2 + (z - 1)] = 1.0f;
  f[2 + kMaxZ] = std::isfinite(e.electronegativity) ? static_cast<float>(e.electronegativity / 4.0) : 0.f;
  f[2 + kMaxZ + 1] = static_cast<float>(e.covalent_radius / 2.0);
  f[2 + kMaxZ + 2] = static_cast<float>(period_of(z)) / 7.f;
  return f;
}

torch::Tensor lattice_features(int which) {
  auto f = torch::zeros({kTokenFeatures});
  f[which] = 1.0f;
  return f;
}

torch::Tensor atoms_condition(int64_t atoms) {
  const double n = static_cast<double>(atoms);
  return torch::tensor({static_cast<float>(n / 20.0), static_cast<float>(std::log(n) / 3.0)});
}

int64_t spacegroup_label(int spacegroup) {
  if (spacegroup == 0) return kSpaceGroups;
  if (spacegroup < 1 || spacegroup > kSpaceGroups) throw Error(fmt::format("space group {} outside 1..230", spacegroup));
  return spacegroup - 1;
}

std::array<double, 6> lattice_numbers(const std::array<double, 6>& cell, int64_t atoms) {
  const double s = std::cbrt(static_cast<double>(atoms));
  return {std::log(cell[0] / s), std::log(cell[1] / s), std::log(cell[2] / s), cell[3], cell[4], cell[5]};
}

std::array<double, 6> encode_lattice(const std::array<double, 6>& cell, int64_t atoms, const LatticeScaling& scaling) {
  auto v = lattice_numbers(cell, atoms);
  for (int k = 0; k < 6; ++k) v[k] = (v[k] - scaling.mean[k]) / scaling.std[k];
  return v;
}

std::array<double, 6> decode_lattice(const std::array<double, 6>& state, int64_t atoms, const LatticeScaling& scaling) {
  const double s = std::cbrt(static_cast<double>(atoms));
  std::array<double, 6> cell{};
  for (int k = 0; k < 6; ++k) {
    const double v = state[k] * scaling.std[k] + scaling.mean[k];
    cell[k] = k < 3 ? std::exp(v) * s : v;
  }
  return cell;
}

std::vector<int> atom_numbers(const Composition& composition) {
  std::vector<int> out;
  for (const auto& [z, n] : composition)
    for (int i = 0; i < n; ++i) out.push_back(z);
  return out;
}

void fill_inputs(const Composition& composition, int spacegroup, int64_t padded, FlowInputs& in, int64_t row) {
  const auto numbers = atom_numbers(composition);
  const auto T = kLatticeTokens + static_cast<int64_t>(numbers.size());
  if (T > padded) throw Error("crystal: more tokens than the batch's padding");
  auto features = in.features[row];
  features[0].copy_(lattice_features(0));
  features[1].copy_(lattice_features(1));
  for (size_t i = 0; i < numbers.size(); ++i) features[kLatticeTokens + static_cast<int64_t>(i)].copy_(atom_features(numbers[i]));
  in.mask[row].narrow(0, 0, T).fill_(true);
  in.cond[row].copy_(atoms_condition(static_cast<int64_t>(numbers.size())));
  in.labels[row] = spacegroup_label(spacegroup);
}

TokenDiT make_crystal_model(int64_t hidden, int64_t depth, int64_t heads, int64_t periodic_pairs) {
  if (heads < 1 || hidden % heads != 0)
    throw Error(fmt::format("crystal model: hidden {} is not a multiple of heads {}", hidden, heads));
  TokenDiTConfig c;
  c.state_dim = 3;
  c.token_features = kTokenFeatures;
  c.cond_features = kCondFeatures;
  c.num_classes = kSpaceGroups;
  c.periodic_frequencies = kPeriodicFrequencies;
  c.periodic_pairs = periodic_pairs;
  c.global_tokens = kLatticeTokens;
  c.hidden_size = hidden, c.depth = depth, c.num_heads = heads;
  c.validate();
  return TokenDiT(c);
}

void save_crystal_model(const std::string& path, const TokenDiTImpl& net, const LatticeScaling& scaling) {
  save_flow_net(path, net, {{"dit.domain", "crystal"},
                            {"crystal.representation", "frac-torus+niggli-lattice"},
                            {"crystal.lattice_mean", join6(scaling.mean)},
                            {"crystal.lattice_std", join6(scaling.std)}});
}

CrystalModel load_crystal_model(const std::string& path) {
  CrystalModel out;
  {
    SafeTensorsFile file(path);
    const auto& meta = file.metadata();
    auto domain = meta.find("dit.domain");
    if (domain == meta.end() || domain->second != "crystal")
      throw Error(fmt::format("{}: not a crystal model (metadata dit.domain is '{}', expected 'crystal')", path,
                              domain == meta.end() ? std::string() : domain->second));
    for (const char* key : {"crystal.lattice_mean", "crystal.lattice_std"})
      if (!meta.count(key)) throw Error(fmt::format("{}: metadata '{}' missing", path, key));
    out.scaling.mean = parse6(meta.at("crystal.lattice_mean"), "crystal.lattice_mean", path);
    out.scaling.std = parse6(meta.at("crystal.lattice_std"), "crystal.lattice_std", path);
    for (double s : out.scaling.std)
      if (!(s > 0)) throw Error(fmt::format("{}: metadata 'crystal.lattice_std' must be positive", path));
  }
  auto net = std::dynamic_pointer_cast<TokenDiTImpl>(load_flow_net(path));
  const auto* c = net ? &net->config() : nullptr;
  if (!c || c->state_dim != 3 || c->token_features != kTokenFeatures || c->cond_features != kCondFeatures ||
      c->num_classes != kSpaceGroups || c->context_features != 0)
    throw Error(fmt::format("{}: not a crystal model (expected a token DiT with {} token features, {} condition "
                            "features and {} space-group classes)", path, kTokenFeatures, kCondFeatures, kSpaceGroups));
  out.net = TokenDiT(net);
  out.net->eval();
  return out;
}

std::string default_crystal_model_path() { return data_dir() + "/models/crystal-dit.safetensors"; }

}  // namespace dit::crystal
