// The protein domain on the shared layer: token encoding, the centring projection, training
// chains from an HDF5 file (the layout of scripts/protein/prepare.py), the one trainer, the one
// pipeline (dit::generate) with the rebuild, relaxation and checks, model files, the CLI
// (dit protein sample, dit check FILE.pdb) and a batch job with domain = "protein".
#include <dit/domain.h>
#include <dit/error.h>
#include <dit/protein.h>
#include <dit/train.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <dit/fs.h>
#include <fstream>

#include "domains/protein/data.h"
#include "domains/protein/dssp.h"
#include "domains/protein/guidance.h"
#include "domains/protein/model.h"
#include "tests/apps/run_cli.h"
#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using dit::protein::Backbone;
using dit::protein::ProteinDomain;
using dit::protein::ProteinRequest;

const std::string kFixtures = std::string(DIT_SOURCE_DIR) + "/tests/data/protein";

std::string temp_dir() {
  auto dir = fs::temp_directory_path() / ("dit_protein_domain_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir.string();
}

std::vector<Backbone> fixture_chains() {
  std::vector<Backbone> out;
  for (const auto& entry : fs::directory_iterator(kFixtures))
    if (entry.path().extension() == ".pdb") out.push_back(dit::protein::read_backbone_pdb(entry.path().string()));
  std::sort(out.begin(), out.end(), [](const Backbone& a, const Backbone& b) { return a.name < b.name; });
  return out;
}

// chains.h5 in the layout of scripts/protein/prepare.py (coords [R, 5, 3], offsets, split,
// names, and dssp from our DSSP unless `with_dssp` is off): every fixture chain, the last one
// held out.
std::string write_chains_h5(const std::string& path, const std::vector<Backbone>& chains, bool with_dssp = true) {
  std::vector<float> coords;
  std::vector<uint8_t> dssp;
  std::vector<int64_t> offsets{0};
  std::vector<uint8_t> split;
  std::vector<char> names;
  constexpr size_t kName = 24;
  for (size_t i = 0; i < chains.size(); ++i) {
    const auto& b = chains[i];
    for (size_t r = 0; r < b.size(); ++r)
      for (const auto* atom : {&b.n, &b.ca, &b.c, &b.o, &b.ca})  // CB: not read by the trainer
        for (int k = 0; k < 3; ++k) coords.push_back(static_cast<float>((*atom)[r][k]));
    offsets.push_back(offsets.back() + static_cast<int64_t>(b.size()));
    for (char c : dit::protein::assign_secondary_structure(b).dssp) dssp.push_back(static_cast<uint8_t>(c));
    split.push_back(i + 1 == chains.size() ? 1 : 0);
    std::string name = b.name.substr(0, kName);
    name.resize(kName, '\0');
    names.insert(names.end(), name.begin(), name.end());
  }
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  auto put = [&](const char* name, hid_t type, std::vector<hsize_t> dims, const void* data) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t set = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(set);
    H5Sclose(space);
  };
  put("coords", H5T_NATIVE_FLOAT, {coords.size() / 15, 5, 3}, coords.data());
  put("offsets", H5T_NATIVE_INT64, {offsets.size()}, offsets.data());
  put("split", H5T_NATIVE_UINT8, {split.size()}, split.data());
  if (with_dssp) put("dssp", H5T_NATIVE_UINT8, {dssp.size()}, dssp.data());
  hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, kName);
  put("names", str, {split.size()}, names.data());
  H5Tclose(str);
  H5Fclose(file);
  return path;
}

double distance(const dit::protein::Vec3& a, const dit::protein::Vec3& b) {
  return std::sqrt(std::pow(a[0] - b[0], 2) + std::pow(a[1] - b[1], 2) + std::pow(a[2] - b[2], 2));
}

TEST(ProteinDomain, RegisteredByName) {
  auto domain = dit::make_domain("protein");
  EXPECT_EQ(domain->name(), "protein");
}

TEST(ProteinDomain, EncodesLengthsAsMaskFeaturesAndCondition) {
  ProteinDomain domain;
  auto in = domain.encode({{20}, {35}});
  ASSERT_EQ(in.features.sizes(), (std::vector<int64_t>{2, 35, dit::protein::kResidueFeatures}));
  EXPECT_EQ(in.mask.sum().item<int64_t>(), 55);
  EXPECT_EQ(in.mask[0].narrow(0, 20, 15).any().item<bool>(), false);
  EXPECT_EQ(in.features[0].narrow(0, 20, 15).abs().sum().item<float>(), 0.f);
  // relative position: 0 at the first residue, 1 at the last
  EXPECT_FLOAT_EQ(in.features[1][34][2 * dit::protein::kFrequencies].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(in.cond[0][0].item<float>(), 0.2f);
  EXPECT_NEAR(in.cond[1][1].item<float>(), std::log(0.35), 1e-6);
  EXPECT_THROW(domain.encode({{dit::protein::kMinLength - 1}}), dit::Error);
  EXPECT_THROW(domain.encode({{dit::protein::kMaxLength + 1}}), dit::Error);
}

TEST(ProteinDomain, ProjectCentresEachChainAndZeroesPadding) {
  ProteinDomain domain;
  auto in = domain.encode({{10}, {16}});
  auto x = torch::randn({2, 16, 3}) + 5.0;
  domain.project(x, 0.5, in);
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t L = b == 0 ? 10 : 16;
    EXPECT_LT(x[b].narrow(0, 0, L).mean(0).abs().max().item<float>(), 1e-5);
  }
  EXPECT_EQ(x[0].narrow(0, 10, 6).abs().sum().item<float>(), 0.f);
}

TEST(ProteinData, ReadsChainsAndAugmentsByRigidMotionsOnly) {
  const auto chains = fixture_chains();
  ASSERT_GE(chains.size(), 3u);
  const auto path = write_chains_h5(temp_dir() + "/chains.h5", chains);
  auto train = dit::protein::load_chains(path, 0, 8, 512);
  auto held = dit::protein::load_chains(path, 1, 8, 512);
  ASSERT_EQ(train.size(), chains.size() - 1);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].name, chains.back().name);
  EXPECT_FLOAT_EQ(train[0].ca[3][1].item<float>(), static_cast<float>(chains[0].ca[3][1]));
  EXPECT_TRUE(dit::protein::load_chains(path, 0, 8, 10).empty());  // length filter

  dit::protein::ProteinData data(train);
  auto gen = dit::sample_generator(5, 0);
  auto batch = data.get(torch::tensor({0, 1}, torch::kLong), gen);
  const int64_t L0 = train[0].ca.size(0);
  auto x = batch.x0[0].narrow(0, 0, L0) * static_cast<float>(dit::protein::kCoordScale);
  EXPECT_LT(x.mean(0).abs().max().item<float>(), 1e-3);  // centred
  // a rotation: every pairwise distance kept (rounding: float32 distances via cdist)
  auto d_in = torch::cdist(train[0].ca, train[0].ca), d_out = torch::cdist(x, x);
  EXPECT_LT((d_in - d_out).abs().max().item<float>(), 0.05);  // float32 cdist of ~50 A spans
  EXPECT_GT((x - (train[0].ca - train[0].ca.mean(0))).abs().max().item<float>(), 1.0);  // rotated
  EXPECT_EQ(batch.inputs.mask[0].sum().item<int64_t>(), L0);

  try {
    dit::protein::load_chains(temp_dir() + "/missing.h5", 0, 8, 512);
    ADD_FAILURE() << "no error for a missing file";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos) << e.what();
  }
  const std::string not_h5 = temp_dir() + "/not.h5";
  std::ofstream(not_h5) << "plain text\n";
  EXPECT_THROW(dit::protein::load_chains(not_h5, 0, 8, 512), dit::Error);
}

// A small model trained for a few steps on the fixture chains: enough to run every stage.
std::string tiny_model() {
  static const std::string path = [] {
    const auto chains = fixture_chains();
    const std::string dir = temp_dir();
    dit::protein::ProteinTrainOptions o;
    o.data = write_chains_h5(dir + "/train.h5", chains);
    o.output = dir + "/tiny.safetensors";
    o.checkpoint = dir + "/tiny.ckpt.safetensors";
    o.min_length = 40, o.max_length = 200, o.hidden = 32, o.depth = 2, o.heads = 2;
    o.checkpoint_every = 10;
    o.train.steps = 10, o.train.batch_size = 4, o.train.warmup_steps = 2, o.train.lr = 1e-3;
    dit::protein::train_protein_model(o);
    return o.output;
  }();
  return path;
}

// The same, taking secondary structure (--secondary-structure), warm-started from tiny_model().
std::string tiny_ss_model() {
  static const std::string path = [] {
    const std::string dir = temp_dir();
    dit::protein::ProteinTrainOptions o;
    o.data = write_chains_h5(dir + "/train_ss.h5", fixture_chains());
    o.output = dir + "/tiny_ss.safetensors";
    o.checkpoint = dir + "/tiny_ss.ckpt.safetensors";
    o.min_length = 40, o.max_length = 200, o.hidden = 32, o.depth = 2, o.heads = 2;
    o.secondary_structure = true, o.init = tiny_model();
    o.checkpoint_every = 10;
    o.train.steps = 4, o.train.batch_size = 4, o.train.warmup_steps = 1, o.train.lr = 1e-3;
    dit::protein::train_protein_model(o);
    return o.output;
  }();
  return path;
}

TEST(ProteinDomain, TrainsSamplesRebuildsRelaxesAndChecks) {
  dit::set_threads(1);
  auto net = dit::protein::load_protein_model(tiny_model());
  EXPECT_EQ(net->config().hidden_size, 32);
  ProteinDomain domain;
  dit::FlowSampling sampling;
  sampling.sampler = "heun";
  sampling.options.steps = 4;
  sampling.seed = 9;
  dit::Progress silent;
  std::vector<ProteinRequest> requests{{24}, {40}};
  auto samples = dit::generate(domain, *net, requests, sampling, silent);
  ASSERT_EQ(samples.size(), 2u);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& b = samples[i].structure;
    ASSERT_TRUE(samples[i].finite);
    ASSERT_EQ(b.size(), static_cast<size_t>(requests[i].length));
    ASSERT_EQ(b.n.size(), b.size());
    ASSERT_EQ(b.cb.size(), b.size());
    EXPECT_FALSE(samples[i].checks.values.empty());
    EXPECT_TRUE(std::isfinite(b.o.back()[2]));
  }
  // Same seed and index, same sample, whatever the batch (noise seeded by (seed, index)). The
  // sampled traces are compared (no relaxation): a local minimisation can end 0.02 A apart from
  // inputs that differ by float rounding (the padded batch's attention sums in another order).
  dit::protein::DecodeOptions trace_only;
  trace_only.relax = false;
  ProteinDomain raw(trace_only);
  auto batched = dit::generate(raw, *net, requests, sampling, silent);
  auto alone = dit::generate(raw, *net, {requests[1]}, sampling, silent, 1);
  EXPECT_LT(distance(alone[0].structure.ca[7], batched[1].structure.ca[7]), 1e-3);

  // A model file of another domain is refused, naming the file.
  const std::string other = temp_dir() + "/other.safetensors";
  dit::TokenDiTConfig c;
  c.state_dim = 3, c.hidden_size = 16, c.depth = 1, c.num_heads = 2;
  dit::save_flow_net(other, dit::TokenDiTImpl(c));
  try {
    dit::protein::load_protein_model(other);
    ADD_FAILURE() << "a non-protein model loaded";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(other), std::string::npos) << e.what();
  }
}

// The chain-neighbour inputs (TokenDiTConfig::chain_neighbours): a model widened from a file
// without them (dit::initialize_from) computes exactly what that file computes; once the new
// columns are used, what sits in a chain's padding never reaches its residues (attention masks
// padded keys, the neighbour inputs mask padded neighbours); the setting survives the model file.
TEST(ProteinModel, ChainNeighboursWarmStartPaddingAndFile) {
  torch::manual_seed(3);
  auto plain = dit::protein::make_protein_model(32, 2, 2, false, 0);
  torch::NoGradGuard no_grad;
  for (auto& p : plain->parameters()) p.normal_(0, 0.2);  // adaLN-Zero: untrained output is 0
  const auto dir = temp_dir();
  const auto plain_file = dir + "/plain.safetensors";
  dit::protein::save_protein_model(plain_file, *plain);
  auto wide = dit::protein::make_protein_model(32, 2, 2, false, 4);
  const auto summary = dit::initialize_from(*wide, plain_file);
  EXPECT_NE(summary.find(", 1 widened"), std::string::npos) << summary;
  ASSERT_EQ(wide->x_embedder->weight.size(1), plain->x_embedder->weight.size(1) + 2 * 4 * (3 + 2));

  ProteinDomain domain;
  auto inputs = domain.encode({{12}, {20}});
  auto x = torch::randn({2, 20, 3}) * 0.5 * inputs.mask.unsqueeze(-1).to(torch::kFloat);
  auto t = torch::full({2}, 0.4);
  plain->eval(), wide->eval();
  auto before = plain->flow(x, t, inputs);
  EXPECT_TRUE(torch::allclose(wide->flow(x, t, inputs), before, 1e-5, 1e-6));

  wide->x_embedder->weight.normal_(0, 0.2);
  auto out = wide->flow(x, t, inputs);
  EXPECT_GT((out - before).abs().max().item<double>(), 1e-3);  // the new inputs are used
  auto junk = x.clone();
  junk[0].narrow(0, 12, 8).normal_();  // chain 0 has 12 residues: rows 12..19 are padding
  auto with_junk = wide->flow(junk, t, inputs);
  EXPECT_TRUE(torch::allclose(with_junk[0].narrow(0, 0, 12), out[0].narrow(0, 0, 12), 1e-5, 1e-6));
  EXPECT_EQ(with_junk[0].narrow(0, 12, 8).abs().max().item<double>(), 0.0);

  const auto wide_file = dir + "/wide.safetensors";
  dit::protein::save_protein_model(wide_file, *wide);
  auto back = dit::protein::load_protein_model(wide_file);
  EXPECT_EQ(back->config().chain_neighbours, 4);
  EXPECT_TRUE(torch::allclose(back->flow(x, t, inputs), out, 1e-6, 1e-7));
  // A file whose shapes cannot be widened into this network is refused, naming it.
  auto other = dit::protein::make_protein_model(48, 2, 2, false, 0);
  dit::protein::save_protein_model(dir + "/other.safetensors", *other);
  try {
    dit::initialize_from(*wide, dir + "/other.safetensors");
    ADD_FAILURE() << "a model of another width started this one";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.safetensors"), std::string::npos) << e.what();
  }
}

// Decoding a sampled trace: a real chain's C-alpha trace with 0.3 A of noise is rebuilt and
// relaxed as one continuous chain to ideal covalent geometry (Engh & Huber 1991, within
// 0.03 A; the checks' outlier bound is 4 s.d., about 0.08 A), staying close to its trace.
TEST(ProteinDomain, DecodeRelaxesANoisyTraceToIdealGeometry) {
  const auto chains = fixture_chains();
  const auto& real = chains.at(1);
  const auto L = static_cast<int64_t>(real.size());
  ProteinDomain domain;
  auto in = domain.encode({{L}});
  auto gen = dit::sample_generator(3, 0);
  auto x0 = torch::empty({1, L, 3});
  for (int64_t r = 0; r < L; ++r)
    for (int k = 0; k < 3; ++k) x0[0][r][k] = real.ca[r][k];
  x0 = (x0 + 0.3 * at::randn({1, L, 3}, gen, torch::TensorOptions().dtype(torch::kFloat32))) /
       static_cast<float>(dit::protein::kCoordScale);
  const auto trace = x0.clone();
  auto out = domain.decode(x0, in, {{L}});
  ASSERT_EQ(out.size(), 1u);
  const auto& b = out[0];
  ASSERT_EQ(static_cast<int64_t>(b.size()), L);
  double moved = 0;
  for (int64_t r = 0; r < L; ++r) {
    EXPECT_NEAR(distance(b.n[r], b.ca[r]), 1.458, 0.03);
    EXPECT_NEAR(distance(b.ca[r], b.c[r]), 1.525, 0.03);
    EXPECT_NEAR(distance(b.c[r], b.o[r]), 1.231, 0.03);
    if (r + 1 < L) {
      EXPECT_NEAR(distance(b.c[r], b.n[r + 1]), 1.329, 0.03);
    }
    dit::protein::Vec3 t{trace[0][r][0].item<double>() * dit::protein::kCoordScale,
                         trace[0][r][1].item<double>() * dit::protein::kCoordScale,
                         trace[0][r][2].item<double>() * dit::protein::kCoordScale};
    moved += std::pow(distance(b.ca[r], t), 2);
  }
  // The noise is 0.52 A RMS in 3-D; the weak CA pull lets the chain move about that much.
  EXPECT_LT(std::sqrt(moved / static_cast<double>(L)), 1.0) << "CA RMSD to the sampled trace";
  const auto report = domain.check(b);
  for (const char* name : {"bond_length_outlier_fraction", "ca_ca_outlier_fraction", "omega_twisted_fraction"}) {
    ASSERT_NE(report.find(name), nullptr) << name;
    EXPECT_TRUE(report.find(name)->pass) << name << " " << report.find(name)->value;
  }
}

bool have_cli() { return std::string(DIT_CLI).size() > 0 && fs::exists(DIT_CLI); }

TEST(ProteinCli, SampleWritesPdbAndH5AndCheckReadsThem) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/cli";
  fs::remove_all(dir);
  const std::string h5 = temp_dir() + "/backbones.h5";
  fs::remove(h5);
  auto r = dit::test::run("protein sample -m " + tiny_model() + " --length 20,30 -n 2 -o " + dir + " --h5 " + h5 +
                          " --steps 3 --sampler heun -t 1 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* name : {"len20_0.pdb", "len20_1.pdb", "len30_0.pdb", "len30_1.pdb"})
    EXPECT_TRUE(fs::exists(dir + "/" + name)) << name << "\n" << r.output;
  EXPECT_NE(r.output.find("pass checks"), std::string::npos) << r.output;
  EXPECT_TRUE(dit::test::temp_leftovers(h5).empty());
  // The PDB files read back with the lengths asked for; dit check picks the backbone checks.
  auto b = dit::protein::read_backbone_pdb(dir + "/len30_1.pdb");
  EXPECT_EQ(b.size(), 30u);
  r = dit::test::run("check " + dir + "/len30_1.pdb --json " + dir + "/report.json");
  EXPECT_TRUE(r.code == 0 || r.code == 1) << r.output;
  EXPECT_NE(r.output.find("ca_ca_max_deviation"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/report.json"));
  // H5MD: 4 frames of 5 x 30 atoms, the per-sample records, the check values.
  hid_t f = H5Fopen(h5.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0) << h5;
  auto dims = [&](const char* name) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    std::vector<hsize_t> out(3, 0);
    if (d < 0) return out;
    hid_t s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, out.data(), nullptr);
    H5Sclose(s);
    H5Dclose(d);
    return out;
  };
  EXPECT_EQ(dims("particles/backbone/position/value"), (std::vector<hsize_t>{4, 150, 3}));
  EXPECT_EQ(dims("samples/valid")[0], 4u);
  EXPECT_EQ(dims("observables/checks/valid/value")[0], 4u);
  EXPECT_EQ(dims("observables/length/value")[0], 4u);
  H5Fclose(f);
  // A known real chain passes every check: exit status 0.
  r = dit::test::run("check " + kFixtures + "/1LQ9_A.pdb");
  EXPECT_EQ(r.code, 0) << r.output;
}

// dit protein rebuild: a real chain's C-alpha trace to a full backbone in the input's frame,
// the checks printed; the rebuilt N, C, O sit near the real ones.
TEST(ProteinCli, RebuildMakesAFullBackboneFromTheTrace) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string out = temp_dir() + "/rebuilt_1LQ9.pdb";
  fs::remove(out);
  auto r = dit::test::run("protein rebuild " + kFixtures + "/1LQ9_A.pdb -o " + out + " -t 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("rama_allowed_fraction"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("passes every check"), std::string::npos) << r.output;  // a real trace
  const auto real = dit::protein::read_backbone_pdb(kFixtures + "/1LQ9_A.pdb");
  const auto rebuilt = dit::protein::read_backbone_pdb(out);
  ASSERT_EQ(rebuilt.size(), real.size());
  double ca = 0, n = 0, c = 0;
  const auto L = static_cast<double>(real.size());
  for (size_t i = 0; i < real.size(); ++i) {
    ca += std::pow(distance(real.ca[i], rebuilt.ca[i]), 2) / L;
    n += std::pow(distance(real.n[i], rebuilt.n[i]), 2) / L;
    c += std::pow(distance(real.c[i], rebuilt.c[i]), 2) / L;
  }
  // The decoder's pull to the trace is weak (1 kJ/mol/A^2: a sampled trace is a proposal), so
  // the relaxation moves it: 0.52 A C-alpha RMSD here, N 0.48 A, C 0.49 A (measured).
  EXPECT_LT(std::sqrt(ca), 0.8);
  EXPECT_LT(std::sqrt(n), 0.8);
  EXPECT_LT(std::sqrt(c), 0.8);
  r = dit::test::run("protein rebuild " + kFixtures + "/missing.pdb -o " + out + ".2");
  EXPECT_NE(r.code, 0);
  EXPECT_FALSE(fs::exists(out + ".2"));
}

TEST(ProteinCli, BadInputExitsNonZeroAndWritesNothing) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/bad";
  fs::remove_all(dir);
  auto r = dit::test::run("protein sample -m " + tiny_model() + " --length 3 -n 1 -o " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--length"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/len3_0.pdb"));
  r = dit::test::run("protein sample -m " + dir + "/missing.safetensors --length 20 -n 1 -o " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
  r = dit::test::run("protein train --data " + dir + "/missing.h5 -o " + dir + "/run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing.h5"), std::string::npos) << r.output;
  const std::string broken = temp_dir() + "/broken.pdb";
  std::ofstream(broken) << "HEADER    nothing here\nEND\n";
  r = dit::test::run("check " + broken);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(broken), std::string::npos) << r.output;
}

TEST(ProteinCli, BatchJobShardsAndFlagsLikeImageJobs) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/batch";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string job = dir + "/job.toml";
  std::ofstream(job) << "domain = \"protein\"\nsamples = 5\nseed = 3\nbatch_size = 2\nthreads = 1\n"
                     << "model = \"" << tiny_model() << "\"\noutput = \"" << dir << "/out.h5\"\n"
                     << "[sampler]\nname = \"euler\"\nsteps = 2\n[protein]\nlengths = [20, 30]\nrelax = false\n";
  auto r = dit::test::run("batch " + job);
  ASSERT_EQ(r.code, 0) << r.output;
  hid_t f = H5Fopen((dir + "/out.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0) << r.output;
  hid_t d = H5Dopen2(f, "observables/length/value", H5P_DEFAULT);
  ASSERT_GE(d, 0);
  std::vector<int64_t> lengths(5);
  H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, lengths.data());
  H5Dclose(d);
  // One /samples record per sample (the runner writes them; the domain does not again).
  d = H5Dopen2(f, "samples/index", H5P_DEFAULT);
  ASSERT_GE(d, 0);
  hid_t space = H5Dget_space(d);
  hsize_t records = 0;
  H5Sget_simple_extent_dims(space, &records, nullptr);
  H5Sclose(space);
  H5Dclose(d);
  EXPECT_EQ(records, 5u);
  H5Fclose(f);
  std::sort(lengths.begin(), lengths.end());  // frames are in batch order (bucketed by length)
  EXPECT_EQ(lengths, (std::vector<int64_t>{20, 20, 20, 30, 30}));
  // An unknown key in [protein] names the file and the key.
  std::ofstream(job, std::ios::app) << "colour = 1\n";
  r = dit::test::run("batch " + job + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("colour"), std::string::npos) << r.output;
}

}  // namespace

namespace {

// Secondary-structure conditioning (ProteinTrainOptions::secondary_structure): the training
// chains carry the file's DSSP in 3 states, each chain's given with probability 1 - ss_dropout
// as one-hot residue features after the positional ones.
TEST(ProteinData, SecondaryStructureFeaturesAndDropout) {
  const auto chains = fixture_chains();
  const auto path = write_chains_h5(temp_dir() + "/chains_ss.h5", chains);
  auto train = dit::protein::load_chains(path, 0, 8, 512);
  ASSERT_FALSE(train.empty());
  const auto& ss = train[0].ss;
  ASSERT_EQ(static_cast<int64_t>(ss.size()), train[0].ca.size(0));
  const auto expected = dit::protein::assign_secondary_structure(chains[0]);
  size_t helix = 0;
  for (size_t i = 0; i < ss.size(); ++i) {
    EXPECT_EQ(ss[i], dit::protein::three_state(expected.dssp[i])) << "residue " << i;
    helix += ss[i] == 'H';
  }
  EXPECT_GT(helix, 5u);  // the fixture has helices: the test can tell the states apart
  const int64_t F = dit::protein::kResidueFeatures, L = train[0].ca.size(0);
  auto gen = dit::sample_generator(5, 0);
  dit::protein::ProteinData given(train, true, 0.0);
  auto f = given.get(torch::tensor({0}, torch::kLong), gen).inputs.features[0];
  ASSERT_EQ(f.size(1), F + dit::protein::kSsFeatures);
  auto onehot = f.narrow(0, 0, L).narrow(1, F, 3);
  EXPECT_TRUE(torch::equal(onehot.sum(1), torch::ones({L})));
  for (int64_t i = 0; i < L; ++i)
    EXPECT_EQ("HE-"[onehot[i].argmax().item<int64_t>()], ss[static_cast<size_t>(i)]) << "residue " << i;
  dit::protein::ProteinData dropped(train, true, 1.0);
  EXPECT_EQ(dropped.get(torch::tensor({0}, torch::kLong), gen).inputs.features[0].narrow(1, F, 3).abs().sum().item<float>(), 0.f);
  // A file without dssp trains plain models, and refuses secondary structure naming a chain.
  auto plain = dit::protein::load_chains(write_chains_h5(temp_dir() + "/chains_plain.h5", chains, false), 0, 8, 512);
  EXPECT_TRUE(plain[0].ss.empty());
  try {
    dit::protein::ProteinData bad(plain, true, 0.2);
    ADD_FAILURE() << "secondary structure without a dssp dataset";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(plain[0].name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dssp"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dit::protein::ProteinData(train, true, 1.5), dit::Error);
}

// The warm start of a secondary-structure model from a file without it places the file's
// columns by the token layout (the new columns zero): the new model computes exactly the file's
// model, with or without a string; the setting survives the model file; requests are checked.
TEST(ProteinModel, SecondaryStructureWarmStartEncodeAndFile) {
  torch::manual_seed(4);
  auto plain = dit::protein::make_protein_model(32, 2, 2, false, 0);
  torch::NoGradGuard no_grad;
  for (auto& p : plain->parameters()) p.normal_(0, 0.2);
  const auto dir = temp_dir();
  dit::protein::save_protein_model(dir + "/plain_ss_base.safetensors", *plain);
  auto ss = dit::protein::make_protein_model(32, 2, 2, false, 2, true);
  EXPECT_FALSE(dit::protein::takes_secondary_structure(*plain));
  ASSERT_TRUE(dit::protein::takes_secondary_structure(*ss));
  const auto summary = dit::protein::warm_start_protein_model(*ss, dir + "/plain_ss_base.safetensors");
  EXPECT_NE(summary.find("residue features 17 -> 20"), std::string::npos) << summary;

  ProteinDomain plain_domain, ss_domain({}, {}, true);
  const std::string helix(12, 'H');
  auto plain_in = plain_domain.encode({{12}, {20}});
  auto ss_in = ss_domain.encode({{12, helix}, {20}});
  ASSERT_EQ(ss_in.features.size(2), dit::protein::kResidueFeatures + dit::protein::kSsFeatures);
  EXPECT_EQ(ss_in.features[0].narrow(0, 0, 12).select(1, dit::protein::kResidueFeatures).sum().item<float>(), 12.f);
  EXPECT_EQ(ss_in.features[1].narrow(1, dit::protein::kResidueFeatures, 3).abs().sum().item<float>(), 0.f);
  auto x = torch::randn({2, 20, 3}) * 0.5 * plain_in.mask.unsqueeze(-1).to(torch::kFloat);
  auto t = torch::full({2}, 0.3);
  plain->eval(), ss->eval();
  auto before = plain->flow(x, t, plain_in);
  EXPECT_TRUE(torch::allclose(ss->flow(x, t, ss_in), before, 1e-5, 1e-6));

  ss->x_embedder->weight.normal_(0, 0.2);
  auto strand_in = ss_domain.encode({{12, std::string(12, 'E')}, {20}});
  auto helix_out = ss->flow(x, t, ss_in), strand_out = ss->flow(x, t, strand_in);
  EXPECT_GT((helix_out[0] - strand_out[0]).abs().max().item<double>(), 1e-3);  // the string is read
  dit::protein::save_protein_model(dir + "/ss.safetensors", *ss);
  auto back = dit::protein::load_protein_model(dir + "/ss.safetensors");
  EXPECT_TRUE(dit::protein::takes_secondary_structure(*back));
  EXPECT_TRUE(torch::allclose(back->flow(x, t, ss_in), helix_out, 1e-6, 1e-7));

  auto error_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const dit::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // A model without the inputs: the string is checked, and left to the guidance (guide_requests).
  EXPECT_EQ(plain_domain.encode({{12, helix}}).features.size(2), dit::protein::kResidueFeatures);
  EXPECT_NE(error_of([&] { plain_domain.encode({{13, helix}}); }).find("12 residues for a chain of 13"), std::string::npos);
  EXPECT_NE(error_of([&] { ss_domain.encode({{13, helix}}); }).find("12 residues for a chain of 13"), std::string::npos);
  EXPECT_NE(error_of([&] { ss_domain.encode({{12, "HHHHHHXHHHHH"}}); }).find("'X' at residue 7"), std::string::npos);
  EXPECT_EQ(error_of([&] { ss_domain.encode({{12, "HHHH----??EE"}}); }), "no error");
}

// The trace guidance reads the requested states (from the inputs of a model that takes them,
// from the requests for one that does not): with a helix requested, the guided traces sit nearer
// helical geometry (lower restraint energy) than with the restraint off.
TEST(ProteinDomain, TraceGuidancePullsRequestedHelicesToHelixGeometry) {
  dit::set_threads(1);
  const auto potential = dit::protein::load_ca_potential(dit::data_dir() + "/protein/ca-potential.txt");
  dit::FlowSampling sampling;
  sampling.sampler = "euler", sampling.options.steps = 10, sampling.seed = 4;
  dit::Progress silent;
  const std::vector<ProteinRequest> requests(2, ProteinRequest{30, std::string(30, 'H')});
  dit::protein::DecodeOptions trace_only;
  trace_only.relax = false;
  for (const auto& model : {tiny_ss_model(), tiny_model()}) {
    auto net = dit::protein::load_protein_model(model);
    const bool takes = dit::protein::takes_secondary_structure(*net);
    auto restraint_energy = [&](double scale) {
      dit::protein::TraceGuidance g;
      g.weight = 1.0, g.t_max = 1.0, g.secondary_structure = scale;
      ProteinDomain domain(trace_only, g, takes);
      double sum = 0;
      for (const auto& s : dit::generate(domain, *net, requests, sampling, silent)) {
        auto ca = torch::empty({1, 30, 3}, torch::kFloat64);
        for (int64_t r = 0; r < 30; ++r)
          for (int k = 0; k < 3; ++k) ca[0][r][k] = s.structure.ca[r][k];
        auto ss = torch::zeros({1, 30, 3}, torch::kFloat64);
        ss.select(2, 0).fill_(1.0);
        dit::protein::TraceEnergyWeights only_ss;
        only_ss.bond = only_ss.clash = only_ss.local = 0;
        sum += dit::protein::trace_energy(ca, {30}, potential, only_ss, ss).item<double>();
      }
      return sum / 2;
    };
    const double off = restraint_energy(0.0), on = restraint_energy(1.0);
    EXPECT_LT(on, 0.5 * off) << model << ": restraint off " << off << " kT, on " << on << " kT";
  }
}

// The bundled library (data/protein/ss-library.txt): real training chains' strings, cut or
// padded to the length asked for, chosen by the seed; its composition is that of the training
// chains (38.5% helix, 24.0% strand in the file's header).
TEST(SecondaryStructureLibrary, BundledStringsByLengthAndSeed) {
  dit::protein::SecondaryStructureLibrary library;
  EXPECT_EQ(library.size(), 4224u);
  for (int64_t L : {8, 40, 60, 100, 150, 300, 512}) {
    const auto s = library.sample(L, 7);
    ASSERT_EQ(static_cast<int64_t>(s.size()), L);
    EXPECT_EQ(s.find_first_not_of("HEL"), std::string::npos) << s;
    EXPECT_EQ(s, library.sample(L, 7));  // a function of the seed
  }
  double helix = 0, strand = 0;
  int differ = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto s = library.sample(100, seed);
    helix += static_cast<double>(std::count(s.begin(), s.end(), 'H')) / 100.0 / 200.0;
    strand += static_cast<double>(std::count(s.begin(), s.end(), 'E')) / 100.0 / 200.0;
    differ += s != library.sample(100, seed + 1000);
  }
  EXPECT_NEAR(helix, 0.385, 0.06);
  EXPECT_NEAR(strand, 0.24, 0.06);
  EXPECT_GT(differ, 190);

  const std::string bad = temp_dir() + "/bad-ss.txt";
  std::ofstream(bad) << "# comment\n5 H5\n6 H3X3\n";
  try {
    dit::protein::SecondaryStructureLibrary broken(bad);
    ADD_FAILURE() << "a bad library loaded";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":3"), std::string::npos) << e.what();
  }
  std::ofstream(bad) << "7 H5\n";
  EXPECT_THROW(dit::protein::SecondaryStructureLibrary{bad}, dit::Error);
}

// dit protein sample --ss: a string, the library, or none; refused for a model without it and
// for a string of another length, naming the option and writing nothing.
TEST(ProteinCli, SampleConditionedOnSecondaryStructure) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/cli_ss";
  fs::remove_all(dir);
  const std::string h5 = temp_dir() + "/ss.h5";
  fs::remove(h5);
  const std::string ss = "LLHHHHHHHHHHLLEEEEEL";
  auto r = dit::test::run("protein sample -m " + tiny_ss_model() + " --length 20 -n 2 --ss " + ss + " -o " + dir +
                          " --h5 " + h5 + " --steps 2 --sampler euler -t 1 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/len20_1.pdb"));
  EXPECT_NE(dit::test::read_bytes(h5).find(ss), std::string::npos);  // recorded in /parameters
  r = dit::test::run("protein sample -m " + tiny_ss_model() + " --length 30 -n 1 --ss library -o " + dir +
                     " --steps 2 --sampler euler -t 1 -q");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/len30_0.pdb"));
  r = dit::test::run("protein sample -m " + tiny_ss_model() + " --length 21 -n 1 --ss " + ss + " -o " + dir + "/x");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--ss: the string has 20 residues, --length asks for 21"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/x/len21_0.pdb"));
  // A model without the inputs takes the string through the trace guidance only; without the
  // guidance the string would do nothing, and is refused.
  r = dit::test::run("protein sample -m " + tiny_model() + " --length 20 -n 1 --ss " + ss + " -o " + dir +
                     "/y --trace-guidance 0");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("would do nothing"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/y/len20_0.pdb"));
  r = dit::test::run("protein sample -m " + tiny_model() + " --length 20 -n 1 --ss " + ss + " -o " + dir +
                     "/z --steps 2 --sampler euler --no-relax -t 1 -q");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/z/len20_0.pdb"));
  // Batch jobs: [protein] secondary_structure = "library"; refused for a model without it when
  // the trace guidance is off (the batch default).
  const std::string job = dir + "/job.toml";
  auto write_job = [&](const std::string& model, const std::string& extra = "") {
    std::ofstream(job) << "domain = \"protein\"\nsamples = 2\nseed = 3\nthreads = 1\nmodel = \"" << model
                       << "\"\noutput = \"" << dir << "/job.h5\"\n[sampler]\nname = \"euler\"\nsteps = 2\n"
                       << "[protein]\nlengths = [24]\nrelax = false\nsecondary_structure = \"library\"\n" << extra;
  };
  write_job(tiny_ss_model());
  r = dit::test::run("batch " + job);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/job.h5"));
  write_job(tiny_model());
  fs::remove(dir + "/job.h5");
  r = dit::test::run("batch " + job + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("secondary_structure"), std::string::npos) << r.output;
  write_job(tiny_model(), "trace_guidance = 1.0\nss_restraint = 0.0\n");
  r = dit::test::run("batch " + job + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("ss_restraint above 0"), std::string::npos) << r.output;
  write_job(tiny_model(), "trace_guidance = 1.0\nss_restraint = -1\n");
  r = dit::test::run("batch " + job + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("ss_restraint: must be a number >= 0"), std::string::npos) << r.output;
  write_job(tiny_model(), "trace_guidance = 1.0\ncompactness = \"strong\"\n");
  r = dit::test::run("batch " + job + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("[protein] compactness: must be a number >= 0"), std::string::npos) << r.output;
  write_job(tiny_model(), "trace_guidance = 1.0\ncompactness = 2.0\n");  // the string through the guidance alone
  r = dit::test::run("batch " + job);
  EXPECT_EQ(r.code, 0) << r.output;
}

}  // namespace
