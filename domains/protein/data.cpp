// Training chains from the prepared HDF5 file and the protein training run (see data.h).
#include "domains/protein/data.h"

#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <hdf5.h>

#include <dit/fs.h>

#include "domains/protein/dssp.h"
#include "domains/protein/model.h"

namespace dit::protein {

namespace {

// Owns an HDF5 id; closes it with `close`.
class H5Id {
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Id() {
    if (id_ >= 0) close_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::vector<hsize_t> dims_of(hid_t dset) {
  H5Id space(H5Dget_space(dset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

template <class T>
std::vector<T> read_all(hid_t file, const std::string& path, const char* name, hid_t type,
                        std::vector<hsize_t>* dims_out = nullptr) {
  H5Id dset(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!dset.ok()) throw Error(fmt::format("{}: no dataset '{}' (see docs/protein-data.md)", path, name));
  const auto dims = dims_of(dset.get());
  size_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<T> out(n);
  if (n && H5Dread(dset.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw Error(fmt::format("{}: cannot read dataset '{}'", path, name));
  if (dims_out) *dims_out = dims;
  return out;
}

std::vector<std::string> read_names(hid_t file, const std::string& path, size_t n) {
  H5Id dset(H5Dopen2(file, "names", H5P_DEFAULT), H5Dclose);
  if (!dset.ok()) return std::vector<std::string>(n);
  H5Id type(H5Dget_type(dset.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) return std::vector<std::string>(n);
  std::vector<std::string> names;
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    std::vector<char*> raw(n);
    if (H5Dread(dset.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
      throw Error(fmt::format("{}: cannot read dataset 'names'", path));
    for (auto* s : raw) names.emplace_back(s ? s : "");
    H5Id space(H5Dget_space(dset.get()), H5Sclose);
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, raw.data());
  } else {
    const size_t width = H5Tget_size(type.get());
    std::vector<char> raw(n * width);
    if (H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
      throw Error(fmt::format("{}: cannot read dataset 'names'", path));
    for (size_t i = 0; i < n; ++i) {
      std::string s(raw.data() + i * width, width);
      s.erase(s.find_last_not_of('\0') + 1);
      names.push_back(s);
    }
  }
  if (names.size() != n) throw Error(fmt::format("{}: 'names' has {} entries for {} chains", path, names.size(), n));
  return names;
}

}  // namespace

std::vector<Chain> load_chains(const std::string& path, int split, int64_t min_length, int64_t max_length) {
  if (!dit::fs::is_regular_file(path))
    throw Error(fmt::format("{}: no such file (prepare it with scripts/protein/prepare.py)", path));
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // our errors name the file and dataset
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) throw Error(fmt::format("{}: not an HDF5 file", path));
  std::vector<hsize_t> cdims;
  const auto coords = read_all<float>(file.get(), path, "coords", H5T_NATIVE_FLOAT, &cdims);
  if (cdims.size() != 3 || cdims[1] != 5 || cdims[2] != 3)
    throw Error(fmt::format("{}: 'coords' must be [residues, 5, 3] (N, CA, C, O, CB)", path));
  const auto offsets = read_all<int64_t>(file.get(), path, "offsets", H5T_NATIVE_INT64);
  const auto splits = read_all<uint8_t>(file.get(), path, "split", H5T_NATIVE_UINT8);
  if (offsets.size() != splits.size() + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<int64_t>(cdims[0]))
    throw Error(fmt::format("{}: 'offsets' ({} entries) does not fit 'split' ({}) and 'coords' ({} residues)",
                            path, offsets.size(), splits.size(), cdims[0]));
  const auto names = read_names(file.get(), path, splits.size());
  std::vector<uint8_t> dssp;
  if (H5Lexists(file.get(), "dssp", H5P_DEFAULT) > 0) {
    dssp = read_all<uint8_t>(file.get(), path, "dssp", H5T_NATIVE_UINT8);
    if (dssp.size() != cdims[0])
      throw Error(fmt::format("{}: 'dssp' has {} entries for {} residues", path, dssp.size(), cdims[0]));
  }
  std::vector<Chain> out;
  for (size_t i = 0; i < splits.size(); ++i) {
    const int64_t begin = offsets[i], L = offsets[i + 1] - offsets[i];
    if (L < 0) throw Error(fmt::format("{}: 'offsets' decreases at chain {}", path, i));
    if (splits[i] != split || L < min_length || L > max_length) continue;
    auto ca = torch::empty({L, 3});
    auto a = ca.accessor<float, 2>();
    bool finite = true;
    for (int64_t r = 0; r < L; ++r)
      for (int k = 0; k < 3; ++k) {
        a[r][k] = coords[static_cast<size_t>((begin + r) * 15 + 3 + k)];  // atom 1 = CA
        finite &= std::isfinite(a[r][k]);
      }
    if (!finite) throw Error(fmt::format("{}: chain {} ({}) has a non-finite CA coordinate", path, i, names[i]));
    std::string ss;
    for (int64_t r = 0; r < L && !dssp.empty(); ++r)
      ss.push_back(three_state(static_cast<char>(dssp[static_cast<size_t>(begin + r)])));
    out.push_back({names[i], ca, ss});
  }
  return out;
}

ProteinData::ProteinData(std::vector<Chain> chains, bool secondary_structure, double ss_dropout)
    : chains_(std::move(chains)), ss_(secondary_structure), ss_dropout_(ss_dropout) {
  if (chains_.empty()) throw Error("protein training data: no chains");
  if (!(ss_dropout >= 0 && ss_dropout <= 1))
    throw Error(fmt::format("protein training data: ss_dropout {}, expected a number in [0, 1]", ss_dropout));
  if (ss_)
    for (const auto& c : chains_)
      if (c.ss.size() != static_cast<size_t>(c.ca.size(0)))
        throw Error(fmt::format("protein training data: chain {} has no secondary structure (dataset 'dssp', "
                                "docs/protein-data.md)", c.name));
}

void ProteinData::check(const FlowNetImpl& net) const {
  const auto* token = dynamic_cast<const TokenDiTImpl*>(&net);
  if (!token || token->config().token_features != kResidueFeatures + (ss_ ? kSsFeatures : 0) ||
      token->config().state_dim != 3 || token->config().cond_features != kCondFeatures)
    throw Error(fmt::format("protein training data: the network is not a protein model{} (make_protein_model)",
                            ss_ ? " with secondary structure" : ""));
}

TrainBatch ProteinData::get(const torch::Tensor& index, at::Generator& gen) const {
  const int64_t B = index.size(0);
  int64_t N = 0;
  for (int64_t b = 0; b < B; ++b) N = std::max(N, chains_.at(index[b].item<int64_t>()).ca.size(0));
  TrainBatch batch;
  batch.x0 = torch::zeros({B, N, 3});
  auto& in = batch.inputs;
  in.features = torch::zeros({B, N, kResidueFeatures + (ss_ ? kSsFeatures : 0)});
  in.mask = torch::zeros({B, N}, torch::kBool);
  in.cond = torch::zeros({B, kCondFeatures});
  for (int64_t b = 0; b < B; ++b) {
    const auto& chain = chains_[index[b].item<int64_t>()];
    const int64_t L = chain.ca.size(0);
    auto ca = chain.ca - chain.ca.mean(0, true);
    auto rot = random_rotation(gen);
    batch.x0[b].narrow(0, 0, L).copy_(torch::matmul(ca, rot.t()) / static_cast<float>(kCoordScale));
    const bool given = ss_ && torch::rand({1}, gen).item<double>() >= ss_dropout_;
    in.features[b].copy_(residue_features(L, N, ss_, given ? chain.ss : std::string()));
    in.mask[b].narrow(0, 0, L).fill_(true);
    in.cond[b].copy_(length_condition(L));
  }
  return batch;
}

// initialize_from widens an input layer by appending zero columns; the token embedder's input is
// [residue features, state, chain neighbours], so a model that gains the secondary-structure
// features gains columns in the middle: the file's columns are placed by that layout here.
std::string warm_start_protein_model(TokenDiTImpl& net, const std::string& path) {
  auto from = load_protein_model(path);  // refuses a file that is not a protein model, naming it
  const auto summary = initialize_from(net, path);
  const int64_t f_new = net.config().token_features, f_old = from->config().token_features;
  if (f_new == f_old) return summary;
  torch::NoGradGuard no_grad;
  auto w = net.x_embedder->weight;
  const auto& old = from->x_embedder->weight;
  const int64_t rest = old.size(1) - f_old;  // state and neighbour columns
  if (f_new < f_old || old.size(0) != w.size(0) || f_new + rest > w.size(1))
    throw Error(fmt::format("{}: the token embedder [{}, {}] does not fit [{}, {}] (residue features {} -> {})",
                            path, old.size(0), old.size(1), w.size(0), w.size(1), f_old, f_new));
  w.zero_();
  w.narrow(1, 0, f_old).copy_(old.narrow(1, 0, f_old));
  w.narrow(1, f_new, rest).copy_(old.narrow(1, f_old, rest));
  return summary + fmt::format("; residue features {} -> {} (new columns zero)", f_old, f_new);
}


void train_protein_model(const ProteinTrainOptions& o) {
  if (o.min_length < kMinLength || o.max_length > kMaxLength || o.min_length > o.max_length)
    throw Error(fmt::format("protein train: lengths {}..{} outside {}..{}", o.min_length, o.max_length,
                            kMinLength, kMaxLength));
  TrainOptions opts = o.train;
  opts.label_dropout = 0;  // no labels: the length is a condition, never dropped
  const bool few_step = make_objective(opts)->needs_step_conditioning();
  torch::manual_seed(opts.seed);  // weight initialisation
  auto model = make_protein_model(o.hidden, o.depth, o.heads, few_step, o.chain_neighbours, o.secondary_structure);
  if (!o.init.empty()) {
    fmt::print(stderr, "protein train: {}\n", warm_start_protein_model(*model, o.init));
  }
  auto chains = load_chains(o.data, 0, o.min_length, o.max_length);
  const auto n_chains = chains.size();
  int64_t residues = 0;
  for (const auto& c : chains) residues += c.ca.size(0);
  FlowMatchingTrainer trainer(model.ptr(),
                              std::make_shared<ProteinData>(std::move(chains), o.secondary_structure, o.ss_dropout),
                              opts);
  TrainRun run;
  run.label = "protein train";
  run.checkpoint = o.checkpoint;
  run.checkpoint_every = o.checkpoint_every;
  run.resume = o.resume;
  run.on_start = [&](FlowMatchingTrainer& t) {
    fmt::print(stderr, "protein train: {} training chains of {}..{} residues ({} residues) from {}\n{}\n"
               "batch {}, steps {} (from {})\n", n_chains, o.min_length, o.max_length, residues, o.data,
               model->config().describe(), opts.batch_size, opts.steps, t.current_step());
  };
  run.save_model = [&](FlowMatchingTrainer& t) {
    save_protein_model(o.output, *std::static_pointer_cast<TokenDiTImpl>(t.ema_net()),
                       {{"train.step", std::to_string(t.current_step())},
                        {"train.chains", std::to_string(n_chains)},
                        {"train.data", dit::fs::path(o.data).filename().string()},
                        {"train.lengths", fmt::format("{}-{}", o.min_length, o.max_length)},
                        {"train.objective", opts.objective}});
  };
  const auto result = run_training(trainer, run);
  fmt::print(stderr, "protein train: {} at step {}: {}, {}\n", result.stopped ? "stopped" : "finished",
             result.step, o.output, o.checkpoint);
}

}  // namespace dit::protein
