// The protein DiT: token layout and model files (see model.h).
#include "domains/protein/model.h"

#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace dit::protein {

namespace {
TokenDiTConfig token_config(int64_t hidden, int64_t depth, int64_t heads, bool secondary_structure) {
  TokenDiTConfig c;
  c.state_dim = 3;
  c.token_features = kResidueFeatures + (secondary_structure ? kSsFeatures : 0);
  c.cond_features = kCondFeatures;
  c.hidden_size = hidden, c.depth = depth, c.num_heads = heads;
  return c;
}
}  // namespace

torch::Tensor residue_features(int64_t length, int64_t padded, bool with_ss, const std::string& ss) {
  if (!ss.empty() && (!with_ss || static_cast<int64_t>(ss.size()) != length))
    throw Error(fmt::format("protein: secondary structure of {} residues for a chain of {}{}", ss.size(), length,
                            with_ss ? "" : " (and the model does not take one)"));
  auto f = torch::zeros({padded, kResidueFeatures + (with_ss ? kSsFeatures : 0)});
  auto a = f.accessor<float, 2>();
  for (int64_t i = 0; i < length; ++i) {
    for (int64_t k = 0; k < kFrequencies; ++k) {
      // Wavelengths from 2 pi residues (neighbours) to about 2 pi * 500 (the whole chain).
      const double w = std::exp(-std::log(500.0) * static_cast<double>(k) / (kFrequencies - 1));
      a[i][2 * k] = static_cast<float>(std::sin(w * static_cast<double>(i)));
      a[i][2 * k + 1] = static_cast<float>(std::cos(w * static_cast<double>(i)));
    }
    a[i][2 * kFrequencies] = length > 1 ? static_cast<float>(i) / static_cast<float>(length - 1) : 0.f;
    if (ss.empty()) continue;
    const char s = ss[static_cast<size_t>(i)];
    const auto state = std::string("HEL-").find(s);  // '-' (DSSP's loop) is L
    if (state != std::string::npos)
      a[i][kResidueFeatures + std::min<int64_t>(static_cast<int64_t>(state), 2)] = 1.f;
    else if (s != '?')
      throw Error(fmt::format("protein: secondary structure letter '{}' at residue {} (expected H, E, L, - or ?)",
                              s, i + 1));
  }
  return f;
}

torch::Tensor length_condition(int64_t length) {
  const double l = static_cast<double>(length) / 100.0;
  return torch::tensor({static_cast<float>(l), static_cast<float>(std::log(l))});
}

Metadata protein_metadata(bool secondary_structure) {
  Metadata m = {{"dit.domain", "protein"},
                {"protein.coord_scale", fmt::format("{}", kCoordScale)},
                {"protein.representation", "ca-trace"},
                {"protein.residue_features",
                 std::to_string(kResidueFeatures + (secondary_structure ? kSsFeatures : 0))}};
  if (secondary_structure) m["protein.secondary_structure"] = "one-hot H, E, L per residue; all zero: not given";
  return m;
}

TokenDiT make_protein_model(int64_t hidden, int64_t depth, int64_t heads, bool step_conditioning,
                            int64_t chain_neighbours, bool secondary_structure) {
  if (heads < 1 || hidden % heads != 0)
    throw Error(fmt::format("protein model: hidden {} is not a multiple of heads {}", hidden, heads));
  auto config = token_config(hidden, depth, heads, secondary_structure);
  config.step_conditioning = step_conditioning;
  config.chain_neighbours = chain_neighbours;
  config.validate();
  return TokenDiT(config);
}

void save_protein_model(const std::string& path, const TokenDiTImpl& net, Metadata extra) {
  auto meta = protein_metadata(takes_secondary_structure(net));
  for (auto& [k, v] : extra) meta[k] = v;
  save_flow_net(path, net, meta);
}

TokenDiT load_protein_model(const std::string& path) {
  {
    SafeTensorsFile file(path);
    const auto& meta = file.metadata();
    auto domain = meta.find("dit.domain");
    if (domain == meta.end() || domain->second != "protein")
      throw Error(fmt::format("{}: not a protein model (metadata dit.domain is '{}', expected 'protein')",
                              path, domain == meta.end() ? std::string() : domain->second));
    auto scale = meta.find("protein.coord_scale");
    if (scale == meta.end() || scale->second != fmt::format("{}", kCoordScale))
      throw Error(fmt::format("{}: protein.coord_scale is '{}', this build reads {}", path,
                              scale == meta.end() ? std::string() : scale->second, kCoordScale));
  }
  auto net = std::dynamic_pointer_cast<TokenDiTImpl>(load_flow_net(path));
  if (!net || net->config().state_dim != 3 ||
      (net->config().token_features != kResidueFeatures &&
       net->config().token_features != kResidueFeatures + kSsFeatures) ||
      net->config().cond_features != kCondFeatures || net->config().context_features != 0)
    throw Error(fmt::format("{}: not a protein model (expected a token DiT with {} residue features, {} with "
                            "secondary structure, and {} condition features)",
                            path, kResidueFeatures, kResidueFeatures + kSsFeatures, kCondFeatures));
  TokenDiT model(net);
  model->eval();
  return model;
}

bool takes_secondary_structure(const TokenDiTImpl& net) {
  return net.config().token_features == kResidueFeatures + kSsFeatures;
}

std::string default_protein_model_path() { return data_dir() + "/models/protein-dit.safetensors"; }

}  // namespace dit::protein
