// The crystal domain: cell geometry, compositions and charge neutrality, CIF files through gemmi,
// spglib symmetry, the checks on real and broken cells, the periodic token layout, a tiny model
// trained on a few real cells by the one trainer, the CLI (sample, check, bad input) and batch jobs.
#include <dit/crystal.h>
#include <dit/domain.h>
#include <dit/error.h>
#include <dit/h5md.h>
#include <dit/train.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <dit/fs.h>
#include <fstream>

#include "domains/crystal/data.h"
#include "domains/crystal/model.h"
#include "tests/apps/run_cli.h"
#include "tests/file_bytes.h"

namespace fs = dit::fs;
using dit::crystal::Crystal;

namespace {

std::string temp_dir() {
  auto dir = fs::temp_directory_path() / ("dit_crystal_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir.string();
}
std::string fixture(const std::string& name) { return std::string(DIT_SOURCE_DIR) + "/tests/data/crystal/" + name; }
bool have_cli() { return fs::exists(DIT_CLI); }

// Rock salt in its conventional cell (Fm-3m, 8 atoms) and its primitive rhombohedral cell.
Crystal rock_salt() {
  Crystal c;
  c.cell = {5.6402, 5.6402, 5.6402, 90, 90, 90};
  for (auto f : std::vector<dit::crystal::Vec3>{{0, 0, 0}, {0, .5, .5}, {.5, 0, .5}, {.5, .5, 0}}) {
    c.numbers.push_back(11);
    c.frac.push_back(f);
    c.numbers.push_back(17);
    c.frac.push_back({std::fmod(f[0] + .5, 1.0), f[1], f[2]});
  }
  return c;
}
Crystal rock_salt_primitive() {
  Crystal c;
  const double a = 5.6402 / std::sqrt(2.0);
  c.cell = {a, a, a, 60, 60, 60};
  c.numbers = {11, 17};
  c.frac = {{0, 0, 0}, {.5, .5, .5}};
  return c;
}

const dit::CheckValue& value(const dit::CheckReport& r, const std::string& name) {
  const auto* v = r.find(name);
  if (!v) throw std::runtime_error("no check value " + name);
  return *v;
}

}  // namespace

TEST(CrystalCell, VolumeMatrixAndPeriodicDistances) {
  const auto c = rock_salt();
  EXPECT_NEAR(dit::crystal::cell_volume(c.cell), std::pow(5.6402, 3), 1e-9);
  const auto p = rock_salt_primitive();
  EXPECT_NEAR(dit::crystal::cell_volume(p.cell), std::pow(5.6402, 3) / 4, 1e-6);
  // lattice_matrix and cell_parameters are inverse.
  const std::array<double, 6> tri = {4.1, 5.3, 6.7, 78, 95, 103};
  const auto back = dit::crystal::cell_parameters(dit::crystal::lattice_matrix(tri));
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(back[k], tri[k], 1e-9);
  // Na-Cl = a / 2 in both cells; Na-Na = a / sqrt 2 (the shortest lattice vector of the primitive cell).
  EXPECT_NEAR(dit::crystal::periodic_distance(c, 0, 1), 5.6402 / 2, 1e-9);
  EXPECT_NEAR(dit::crystal::periodic_distance(p, 0, 1), 5.6402 / 2, 1e-9);
  EXPECT_NEAR(dit::crystal::periodic_distance(p, 0, 0), 5.6402 / std::sqrt(2.0), 1e-9);
  // A sheared description of the same lattice (c' = c + 2a + b) gives the same distances.
  Crystal sheared;
  const auto m = dit::crystal::lattice_matrix({3, 4, 5, 90, 90, 90});
  dit::crystal::Mat3 s = m;
  for (int k = 0; k < 3; ++k) s[2][k] = m[2][k] + 2 * m[0][k] + m[1][k];
  sheared.cell = dit::crystal::cell_parameters(s);
  sheared.numbers = {6, 6};
  sheared.frac = {{0, 0, 0}, {0.5, 0, 0}};  // 1.5 A apart along a, same fractional a in both bases
  EXPECT_NEAR(dit::crystal::periodic_distance(sheared, 0, 1), 1.5, 1e-9);
  EXPECT_NEAR(dit::crystal::periodic_distance(sheared, 0, 0), 3.0, 1e-9);
  // No cell from these angles.
  EXPECT_TRUE(std::isnan(dit::crystal::cell_volume({3, 3, 3, 170, 10, 90})));
}

TEST(CrystalComposition, ParseFormulaAndErrors) {
  using dit::crystal::parse_composition;
  auto fe = parse_composition("Fe6O8");
  EXPECT_EQ(fe.at(26), 6);
  EXPECT_EQ(fe.at(8), 8);
  EXPECT_EQ(dit::crystal::formula(fe), "Fe6O8");
  EXPECT_EQ(dit::crystal::formula(parse_composition("NaCl", 8)), "Cl4Na4");
  EXPECT_EQ(dit::crystal::formula(parse_composition("SiO2")), "O2Si");
  EXPECT_EQ(dit::crystal::formula(parse_composition("OSiO")), "O2Si");  // repeated elements add up
  auto message = [](const std::string& text, int atoms) {
    try {
      parse_composition(text, atoms);
    } catch (const dit::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("Xx2", 0).find("unknown element 'Xx'"), std::string::npos);
  EXPECT_NE(message("fe2O3", 0).find("position 1"), std::string::npos);
  EXPECT_NE(message("NaCl", 3).find("not a multiple"), std::string::npos);
  EXPECT_NE(message("Fe0", 0).find(">= 1"), std::string::npos);
  EXPECT_NE(message("C70", 0).find("more than 64"), std::string::npos);
  EXPECT_NE(message("", 0).find("empty"), std::string::npos);
}

TEST(CrystalComposition, ChargeNeutralityWithCommonOxidationStates) {
  using dit::crystal::charge_balance;
  using dit::crystal::parse_composition;
  EXPECT_EQ(charge_balance(parse_composition("NaCl")), 1);
  EXPECT_EQ(charge_balance(parse_composition("Al2O3")), 1);
  EXPECT_EQ(charge_balance(parse_composition("BaTiO3")), 1);
  EXPECT_EQ(charge_balance(parse_composition("CuZn")), 1);   // an alloy
  EXPECT_EQ(charge_balance(parse_composition("Fe3O4")), 2);  // mixed valence only
  EXPECT_EQ(charge_balance(parse_composition("NaCl2")), 0);
  EXPECT_EQ(charge_balance(parse_composition("O2")), 0);     // no common state sums to zero
  EXPECT_EQ(charge_balance(parse_composition("Ar4")), 1);    // noble gases: state 0
}

TEST(CrystalCif, ReadsSymmetryByNameAndByOperationsAndWritesP1) {
  const auto nacl = dit::crystal::read_crystal_cif(fixture("NaCl_Fm-3m.cif"));
  ASSERT_EQ(nacl.size(), 8u);  // Fm-3m expanded
  EXPECT_EQ(dit::crystal::formula(dit::crystal::composition_of(nacl)), "Cl4Na4");
  const auto mono = dit::crystal::read_crystal_cif(fixture("P21c_ops.cif"));
  ASSERT_EQ(mono.size(), 4u);  // the 4 listed operations
  EXPECT_NEAR(mono.cell[4], 100, 1e-9);
  // Round trip through our P1 writer and gemmi's reader.
  const std::string path = temp_dir() + "/mono.cif";
  dit::crystal::write_crystal_cif(mono, path);
  const auto back = dit::crystal::read_crystal_cif(path);
  ASSERT_EQ(back.size(), mono.size());
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(back.cell[k], mono.cell[k], 1e-6);
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back.numbers[i], mono.numbers[i]);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(back.frac[i][k], mono.frac[i][k], 1e-6);
  }
  EXPECT_TRUE(dit::test::temp_leftovers(path).empty());
  // Errors name the file and what is wrong; disordered sites are refused.
  auto message = [](const std::string& p) {
    try {
      dit::crystal::read_crystal_cif(p);
    } catch (const dit::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(fixture("disordered.cif")).find("occupancy"), std::string::npos);
  EXPECT_NE(message(temp_dir() + "/missing.cif").find("no such file"), std::string::npos);
  const std::string truncated = temp_dir() + "/truncated.cif";
  std::ofstream(truncated) << "data_x\n_cell_length_a 4\nloop_\n_atom_site_label\n";
  EXPECT_NE(message(truncated).find(truncated), std::string::npos);
}

TEST(CrystalSymmetry, SpglibFindsRockSaltInEitherCell) {
  const auto conventional = dit::crystal::find_symmetry(rock_salt(), 0.01);
  EXPECT_EQ(conventional.number, 225);
  EXPECT_EQ(conventional.international, "Fm-3m");
  const auto primitive = dit::crystal::find_symmetry(rock_salt_primitive(), 0.01);
  EXPECT_EQ(primitive.number, 225);
  EXPECT_EQ(primitive.standardized.size(), 8u);  // the conventional cell
  EXPECT_NEAR(primitive.standardized.cell[0], 5.6402, 1e-6);
  // Displaced by 0.05 A: no longer Fm-3m at 0.01 A, again at 0.1 A.
  auto shaken = rock_salt();
  shaken.frac[3][0] += 0.05 / 5.6402;
  EXPECT_NE(dit::crystal::find_symmetry(shaken, 0.01).number, 225);
  EXPECT_EQ(dit::crystal::find_symmetry(shaken, 0.1).number, 225);
}

TEST(CrystalChecks, RealCellPassesBrokenCellsFail) {
  const auto good = dit::crystal::check_crystal(rock_salt());
  EXPECT_TRUE(good.valid());
  EXPECT_NEAR(value(good, "min_distance").value, 2.8201, 1e-4);
  EXPECT_EQ(value(good, "spacegroup_0.1").value, 225);
  EXPECT_NEAR(value(good, "density_upper").value, 2.165, 0.01);  // rock salt: 2.165 g/cm^3
  // Two atoms 0.3 A apart.
  auto overlap = rock_salt();
  overlap.frac[1] = {overlap.frac[0][0] + 0.3 / 5.6402, overlap.frac[0][1], overlap.frac[0][2]};
  const auto r = dit::crystal::check_crystal(overlap);
  EXPECT_FALSE(value(r, "min_distance").pass);
  EXPECT_FALSE(value(r, "min_distance_ratio").pass);
  // A collapsed cell: too dense, too little volume per atom.
  auto small = rock_salt();
  small.cell = {2, 2, 2, 90, 90, 90};
  const auto s = dit::crystal::check_crystal(small);
  EXPECT_FALSE(value(s, "volume_per_atom_lower").pass);
  EXPECT_FALSE(value(s, "density_upper").pass);
  // Not charge balanced.
  auto salt = rock_salt();
  salt.numbers[1] = 11;
  EXPECT_FALSE(value(dit::crystal::check_crystal(salt), "charge_neutral").pass);
  // Angles that form no cell: every value fails, nothing throws.
  auto none = rock_salt();
  none.cell = {3, 3, 3, 170, 10, 90};
  const auto n = dit::crystal::check_crystal(none);
  EXPECT_FALSE(n.valid());
  EXPECT_FALSE(value(n, "spacegroup_0.1").pass);
}

TEST(CrystalDomain, TokensNoiseProjectionAndDecode) {
  dit::crystal::LatticeScaling scaling;
  scaling.mean = {1.0, 1.1, 1.2, 90, 90, 90};
  scaling.std = {0.2, 0.2, 0.2, 10, 10, 10};
  dit::crystal::CrystalDomain domain(scaling);
  std::vector<dit::crystal::CrystalRequest> requests = {{dit::crystal::parse_composition("NaCl", 8), 225},
                                                        {dit::crystal::parse_composition("SiO2"), 0}};
  auto in = domain.encode(requests);
  ASSERT_EQ(in.features.sizes(), torch::IntArrayRef({2, 10, dit::crystal::kTokenFeatures}));
  EXPECT_EQ(in.mask.sum().item<int64_t>(), 10 + 5);
  EXPECT_EQ(in.labels[0].item<int64_t>(), 224);
  EXPECT_EQ(in.labels[1].item<int64_t>(), dit::crystal::kSpaceGroups);  // any: the null class
  // Atom tokens start uniform on the circle, the lattice tokens Gaussian; padding zero; seeded.
  auto x = domain.noise(in, 5, 0);
  auto atoms = x[0].narrow(0, 2, 8);
  EXPECT_LE(atoms.abs().max().item<float>(), 0.5f);
  EXPECT_TRUE(torch::equal(x, domain.noise(in, 5, 0)));
  EXPECT_EQ(x[1].narrow(0, 5, 5).abs().sum().item<float>(), 0.f);
  // Projection wraps atoms into [-0.5, 0.5) and leaves the lattice tokens alone.
  auto y = x.clone();
  y[0][0][0] = 2.7f;
  y[0][3][1] = 1.3f;
  domain.project(y, 0.5, in);
  EXPECT_FLOAT_EQ(y[0][0][0].item<float>(), 2.7f);
  EXPECT_NEAR(y[0][3][1].item<float>(), 0.3f, 1e-6);
  // Decode: lattice tokens at zero give the scaling's mean cell; fractional coordinates in [0, 1).
  auto z = torch::zeros_like(x);
  z[0][2][0] = -0.25f;
  auto cells = domain.decode(z, in, requests);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].size(), 8u);
  EXPECT_NEAR(cells[0].cell[0], std::exp(1.0) * 2, 1e-5);  // a = e^mean * N^(1/3)
  EXPECT_NEAR(cells[0].cell[4], 90, 1e-9);
  EXPECT_NEAR(cells[0].frac[0][0], 0.75, 1e-6);
  EXPECT_EQ(cells[1].name, "O2Si");
  // Lattice numbers: encode then decode is the identity.
  const std::array<double, 6> cell = {4.2, 5.1, 7.3, 80, 95, 101};
  const auto back = dit::crystal::decode_lattice(dit::crystal::encode_lattice(cell, 6, scaling), 6, scaling);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(back[k], cell[k], 1e-9);
}

// A network that returns zero and remembers what it saw: the periodic objective's inputs and
// targets, observed from outside.
struct Recorder : dit::FlowNetImpl {
  torch::Tensor seen;
  torch::Tensor flow(const torch::Tensor& x, const torch::Tensor&, const dit::FlowInputs&, const torch::Tensor&) override {
    seen = x.detach().clone();
    return x * weight;
  }
  torch::Tensor weight = register_parameter("weight", torch::zeros({1}));
  int64_t num_classes() const override { return 0; }
  bool step_conditioned() const override { return false; }
  std::string describe() const override { return "recorder"; }
  dit::Metadata metadata() const override { return {}; }
  std::shared_ptr<FlowNetImpl> fresh() const override { return std::make_shared<Recorder>(); }
};

struct PeriodicData : dit::TrainingData {
  int64_t size() const override { return 4; }
  dit::TrainBatch get(const torch::Tensor& index, at::Generator&) const override {
    dit::TrainBatch b;
    b.x0 = torch::full({index.size(0), 64, 3}, 0.45f);  // near the wrap
    b.periodic = torch::ones({index.size(0), 64, 3}, torch::kBool);
    return b;
  }
};

TEST(PeriodicFlowMatching, NoiseIsUniformPathsAreShortestArcsInputsWrapped) {
  auto net = std::make_shared<Recorder>();
  dit::TrainOptions opts;
  opts.steps = 1, opts.batch_size = 4, opts.warmup_steps = 0, opts.label_dropout = 0;
  dit::FlowMatchingTrainer trainer(net, std::make_shared<PeriodicData>(), opts);
  const double loss = trainer.step();
  // Inputs are wrapped into [-0.5, 0.5].
  ASSERT_TRUE(net->seen.defined());
  EXPECT_LE(net->seen.abs().max().item<float>(), 0.5f + 1e-6f);
  // The target wrap(u - x0) has |.| <= 0.5 and, u uniform, mean square 1/12: the Gaussian
  // path's target (eps - x0) would give about 1.2.
  EXPECT_NEAR(loss, 1.0 / 12.0, 0.01);
}

namespace {

// A small training file in prepare.py's layout: rock salt and a few of its distortions.
std::string write_crystals_h5(const std::string& path) {
  fs::remove(path);
  std::vector<Crystal> cells = {rock_salt_primitive(), rock_salt()};
  for (int i = 0; i < 4; ++i) {
    auto c = rock_salt_primitive();
    c.cell[0] *= 1.0 + 0.02 * i;
    c.frac[1][2] += 0.01 * i;
    cells.push_back(c);
  }
  std::vector<int32_t> counts, groups, z;
  std::vector<int64_t> offsets;
  std::vector<uint8_t> split;
  std::vector<double> lattice, frac;
  for (size_t s = 0; s < cells.size(); ++s) {
    offsets.push_back(static_cast<int64_t>(z.size()));
    counts.push_back(static_cast<int32_t>(cells[s].size()));
    groups.push_back(s < 2 ? 225 : 0);
    split.push_back(s == 1 ? 1 : 0);
    for (double v : cells[s].cell) lattice.push_back(v);
    for (size_t i = 0; i < cells[s].size(); ++i) {
      z.push_back(cells[s].numbers[i]);
      for (double v : cells[s].frac[i]) frac.push_back(v);
    }
  }
  const auto S = static_cast<int64_t>(cells.size()), A = static_cast<int64_t>(z.size());
  dit::h5md::File file(path, dit::h5md::Mode::Create);
  file.write_dataset("crystals/num_atoms", torch::tensor(counts, torch::kInt32));
  file.write_dataset("crystals/offset", torch::tensor(offsets, torch::kInt64));
  file.write_dataset("crystals/lattice", torch::tensor(lattice, torch::kFloat64).reshape({S, 6}));
  file.write_dataset("crystals/split", torch::tensor(std::vector<int64_t>(split.begin(), split.end())).to(torch::kUInt8));
  file.write_dataset("crystals/spacegroup", torch::tensor(groups, torch::kInt32));
  file.write_dataset("atoms/Z", torch::tensor(z, torch::kInt32));
  file.write_dataset("atoms/frac", torch::tensor(frac, torch::kFloat64).reshape({A, 3}));
  return path;
}

std::string tiny_model() {
  static const std::string path = [] {
    const std::string dir = temp_dir();
    dit::crystal::CrystalTrainOptions o;
    o.data = write_crystals_h5(dir + "/crystals.h5");
    o.output = dir + "/tiny.safetensors";
    o.checkpoint = dir + "/tiny.ckpt.safetensors";
    o.max_atoms = 20, o.hidden = 32, o.depth = 2, o.heads = 2, o.checkpoint_every = 10;
    o.train.steps = 10, o.train.batch_size = 4, o.train.warmup_steps = 2, o.train.lr = 1e-3, o.train.label_dropout = 0.5;
    dit::crystal::train_crystal_model(o);
    return o.output;
  }();
  return path;
}

}  // namespace

TEST(CrystalTraining, LoadsTheSplitFitsTheScalingAndTrains) {
  const std::string h5 = write_crystals_h5(temp_dir() + "/split.h5");
  std::vector<int> groups;
  const auto train = dit::crystal::load_crystals(h5, 0, 20, &groups);
  EXPECT_EQ(train.size(), 5u);
  EXPECT_EQ(groups.front(), 225);
  EXPECT_EQ(dit::crystal::load_crystals(h5, 1, 20).size(), 1u);
  EXPECT_EQ(dit::crystal::load_crystals(h5, 0, 4).size(), 5u);  // the 8-atom cell is held out anyway
  const auto scaling = dit::crystal::fit_lattice_scaling(train);
  EXPECT_NEAR(scaling.mean[3], 60, 1e-9);  // every training cell is rhombohedral (60 deg)
  // The model trains (finite loss), saves the scaling and loads back as a crystal model.
  const auto model = dit::crystal::load_crystal_model(tiny_model());
  EXPECT_EQ(model.net->config().periodic_frequencies, dit::crystal::kPeriodicFrequencies);
  EXPECT_NEAR(model.scaling.mean[3], 60, 1e-6);
  // Missing files and other domains' models are refused by name.
  EXPECT_THROW(dit::crystal::load_crystals(temp_dir() + "/missing.h5", 0, 20), dit::Error);
  try {
    dit::crystal::load_crystal_model(std::string(DIT_SOURCE_DIR) + "/data/models/protein-dit.safetensors");
    FAIL() << "a protein model loaded as a crystal model";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a crystal model"), std::string::npos);
  }
}

TEST(CrystalDomain, GenerateReturnsEveryRequestChecked) {
  auto model = dit::crystal::load_crystal_model(tiny_model());
  dit::crystal::CrystalDomain domain(model.scaling);
  std::vector<dit::crystal::CrystalRequest> requests(3, {dit::crystal::parse_composition("NaCl"), 0});
  dit::FlowSampling sampling;
  sampling.options.steps = 4;
  dit::Progress progress("test", 0, false);
  auto out = dit::generate(domain, *model.net, requests, sampling, progress);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& g : out) {
    EXPECT_TRUE(g.finite);
    EXPECT_EQ(g.structure.size(), 2u);
    EXPECT_NE(g.checks.find("min_distance"), nullptr);  // flagged or not, every sample is checked
    for (const auto& f : g.structure.frac)
      for (double v : f) EXPECT_TRUE(v >= 0 && v < 1) << v;
  }
}

TEST(CrystalCli, SampleWritesCifsAndH5AndCheckReadsThem) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/cli";
  fs::remove_all(dir);
  const std::string h5 = temp_dir() + "/crystals.h5";
  fs::remove(h5);
  auto r = dit::test::run("crystal sample -m " + tiny_model() + " --composition NaCl,SiO2 --atoms 6 -n 2 -o " + dir +
                          " --h5 " + h5 + " --steps 3 --sampler heun -t 1 -q");
  // NaCl cannot be multiplied to 6 atoms? It can (Na3Cl3); SiO2 to 6 (Si2O4).
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* name : {"Cl3Na3_0.cif", "Cl3Na3_1.cif", "O4Si2_0.cif", "O4Si2_1.cif"})
    EXPECT_TRUE(fs::exists(dir + "/" + name)) << name << "\n" << r.output;
  EXPECT_TRUE(dit::test::temp_leftovers(h5).empty());
  const auto c = dit::crystal::read_crystal_cif(dir + "/O4Si2_1.cif");
  EXPECT_EQ(c.size(), 6u);
  r = dit::test::run("check " + dir + "/O4Si2_1.cif --json " + dir + "/report.json");
  EXPECT_TRUE(r.code == 0 || r.code == 1) << r.output;
  EXPECT_NE(r.output.find("min_distance"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/report.json"));
  // dit check on a real CIF with symmetry: rock salt passes every check.
  r = dit::test::run("check " + fixture("NaCl_Fm-3m.cif"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Fm-3m"), std::string::npos) << r.output;
  // H5MD: 4 frames with a periodic box each.
  dit::h5md::File f(h5, dit::h5md::Mode::Read);
  EXPECT_EQ(f.rows("particles/crystal/position/value"), 4);
  EXPECT_EQ(f.rows("particles/crystal/box/edges/value"), 4);
  EXPECT_EQ(f.rows("samples/index"), 4);
  EXPECT_EQ(f.string_attribute("particles/crystal/box", "boundary").value_or(""), "periodic");
}

TEST(CrystalCli, BadInputExitsNonZeroAndWritesNothing) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/bad";
  fs::remove_all(dir);
  auto r = dit::test::run("crystal sample -m " + tiny_model() + " --composition Fe2Xx3 -n 1 -o " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("Xx"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir));
  r = dit::test::run("crystal sample -m " + tiny_model() + " --composition NaCl --atoms 3 -n 1 -o " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("not a multiple"), std::string::npos) << r.output;
  r = dit::test::run("crystal sample -m " + dir + "/missing.safetensors --composition NaCl -n 1 -o " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir));
  r = dit::test::run("check " + fixture("disordered.cif"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("occupancy"), std::string::npos) << r.output;
}

TEST(CrystalCli, BatchJobShardsAndFlags) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir() + "/batch";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string job = dir + "/job.toml";
  std::ofstream(job) << "domain = \"crystal\"\nsamples = 5\nseed = 3\nbatch_size = 2\nthreads = 1\n"
                     << "model = \"" << tiny_model() << "\"\noutput = \"" << dir << "/out.h5\"\n"
                     << "[sampler]\nname = \"euler\"\nsteps = 3\n[crystal]\ncompositions = [\"NaCl\", \"MgO\"]\n"
                     << "repulsion = 0.05\nanneal = 2.0\n";
  auto r = dit::test::run("batch " + job);
  ASSERT_EQ(r.code, 0) << r.output;
  dit::h5md::File f(dir + "/out.h5", dit::h5md::Mode::Read);
  EXPECT_EQ(f.rows("samples/index"), 5);
  EXPECT_EQ(f.rows("particles/crystal/box/edges/value"), 5);
  // A bad key in [crystal] is refused by name.
  const std::string bad = dir + "/bad.toml";
  std::ofstream(bad) << "domain = \"crystal\"\nsamples = 1\nmodel = \"" << tiny_model() << "\"\noutput = \"" << dir
                     << "/bad.h5\"\n[crystal]\ncompositions = [\"NaCl\"]\nspacegroup = 300\n";
  r = dit::test::run("batch " + bad);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("spacegroup"), std::string::npos) << r.output;
  std::ofstream(bad) << "domain = \"crystal\"\nsamples = 1\nmodel = \"" << tiny_model() << "\"\noutput = \"" << dir
                     << "/bad.h5\"\n[crystal]\ncompositions = [\"NaCl\"]\nanneal = -1\n";
  r = dit::test::run("batch " + bad);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("[crystal] anneal"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/bad.h5"));
}

TEST(CrystalDomain, RepulsionGuidancePushesOverlappingAtomsApartLateOnly) {
  dit::crystal::LatticeScaling scaling;  // mean 0, std 1: lattice tokens hold the numbers directly
  scaling.mean = {0, 0, 0, 90, 90, 90};
  scaling.std = {1, 1, 1, 1, 1, 1};
  std::vector<dit::crystal::CrystalRequest> requests = {{dit::crystal::parse_composition("Si2"), 0}};
  dit::crystal::CrystalDomain guided(scaling), plain(scaling, 0.0);
  auto in = guided.encode(requests);
  // Lattice tokens (ln(4 / 2^(1/3)) x3, 0 x3): a cubic cell of a = 4 A (2 atoms).
  auto x = torch::zeros({1, 4, 3});
  x[0][0].fill_(static_cast<float>(std::log(4.0 / std::cbrt(2.0))));
  x[0][2][0] = 0.0f;
  x[0][3][0] = 0.1f;  // 0.4 A apart, bound 0.6 x (1.11 + 1.11) = 1.33 A
  dit::VelocityFn zero = [](const torch::Tensor& y, const torch::Tensor&) { return torch::zeros_like(y); };
  auto late = guided.guide(zero, in)(x, torch::full({1}, 0.1f));
  auto early = guided.guide(zero, in)(x, torch::full({1}, 0.8f));
  auto off = plain.guide(zero, in)(x, torch::full({1}, 0.1f));
  EXPECT_EQ(early.abs().sum().item<float>(), 0.f);
  EXPECT_EQ(off.abs().sum().item<float>(), 0.f);
  // The sampler moves x <- x - dt v: atom 2 (at 0.0) must move to -a, atom 3 (at 0.1) to +a.
  EXPECT_GT(late[0][2][0].item<float>(), 0.f);
  EXPECT_LT(late[0][3][0].item<float>(), 0.f);
  EXPECT_EQ(late[0][0].abs().sum().item<float>(), 0.f);  // the lattice is left to the model
}

TEST(CrystalDomain, AntiAnnealingScalesAtomVelocityOnlyAndNeverOvershoots) {
  using dit::crystal::anneal_factor;
  // No grid: 1 + slope (1 - t).
  EXPECT_DOUBLE_EQ(anneal_factor(5.0, 1.0, {}), 1.0);
  EXPECT_DOUBLE_EQ(anneal_factor(5.0, 0.5, {}), 3.5);
  EXPECT_DOUBLE_EQ(anneal_factor(0.0, 0.2, {}), 1.0);
  // Uniform grid of 10 steps: at t = 0.5 the cap t / dt = 5 is above 3.5; at t = 0.2 it is 2
  // (below 5), at the last node t = 0.1 it is 1: an Euler step lands at most on x - t v.
  std::vector<double> grid;
  for (int k = 10; k >= 0; --k) grid.push_back(k / 10.0);
  EXPECT_DOUBLE_EQ(anneal_factor(5.0, 0.5, grid), 3.5);
  EXPECT_NEAR(anneal_factor(5.0, 0.2, grid), 2.0, 1e-12);
  EXPECT_NEAR(anneal_factor(5.0, 0.1, grid), 1.0, 1e-12);
  EXPECT_NEAR(anneal_factor(5.0, 0.15, grid), 1.5, 1e-12);  // a stage between nodes: dt of its interval

  dit::crystal::LatticeScaling scaling;
  std::vector<dit::crystal::CrystalRequest> requests = {{dit::crystal::parse_composition("NaCl"), 0}};
  dit::crystal::CrystalDomain annealed(scaling, /*repulsion=*/0.0, /*anneal=*/5.0);
  auto in = annealed.encode(requests);
  dit::VelocityFn ones = [](const torch::Tensor& y, const torch::Tensor&) { return torch::ones_like(y); };
  auto v = annealed.guide(ones, in)(torch::zeros({1, 4, 3}), torch::full({1}, 0.5f));
  EXPECT_FLOAT_EQ(v[0][0][0].item<float>(), 1.f);  // lattice tokens: unchanged
  EXPECT_FLOAT_EQ(v[0][1][2].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(v[0][2][0].item<float>(), 3.5f);  // atoms: x 3.5
  EXPECT_FLOAT_EQ(v[0][3][2].item<float>(), 3.5f);
  // use_sampling: Euler on 10 uniform steps caps the last step (t = 0.1) at t / dt = 1; an
  // adaptive sampler has no grid, so 1 + 5 x 0.9 = 5.5 there.
  dit::FlowSampling sampling;
  sampling.options.steps = 10;
  annealed.use_sampling(sampling);
  auto last = annealed.guide(ones, in)(torch::zeros({1, 4, 3}), torch::full({1}, 0.1f));
  EXPECT_NEAR(last[0][2][0].item<float>(), 1.f, 1e-5);
  EXPECT_FLOAT_EQ(last[0][0][0].item<float>(), 1.f);
  sampling.sampler = "dopri5";
  annealed.use_sampling(sampling);
  last = annealed.guide(ones, in)(torch::zeros({1, 4, 3}), torch::full({1}, 0.1f));
  EXPECT_NEAR(last[0][2][0].item<float>(), 5.5f, 1e-5);
  EXPECT_THROW(dit::crystal::CrystalDomain(scaling, 0.0, -1.0), dit::Error);
}

// TokenDiTConfig::periodic_pairs (make_crystal_model(..., pairs)): the atoms see differences
// only, so shifting every atom by one vector (the cell's origin) changes no output, permuting
// the atoms permutes the outputs, the fused inference path agrees with flow(), padding does not
// leak in, and the file keeps the configuration.
TEST(CrystalModel, PeriodicPairsAreTranslationInvariantAndPermutationEquivariant) {
  torch::manual_seed(11);
  // adaLN-Zero starts with a zero output: give every weight random values first.
  auto randomize = [](torch::nn::Module& m) {
    torch::NoGradGuard no_grad;
    for (auto& p : m.parameters()) p.add_(torch::randn_like(p) * 0.2);
  };
  auto net = dit::crystal::make_crystal_model(32, 2, 2, /*periodic_pairs=*/3);
  randomize(*net);
  net->eval();
  EXPECT_EQ(net->config().global_tokens, dit::crystal::kLatticeTokens);
  dit::crystal::CrystalDomain domain;
  std::vector<dit::crystal::CrystalRequest> requests = {{dit::crystal::parse_composition("Mg2Si1O4"), 0}};
  auto in = domain.encode(requests);  // 2 lattice + 7 atom tokens
  auto x = domain.noise(in, 5, 0);
  auto t = torch::full({1}, 0.4f);
  torch::NoGradGuard no_grad;
  auto y = net->flow(x, t, in);
  ASSERT_GT(y.abs().max().item<float>(), 1e-2f);
  // Translation: every atom + (0.3, -0.2, 0.45), wrapped.
  auto shifted = x.clone();
  auto atoms = shifted.narrow(1, dit::crystal::kLatticeTokens, 7);
  atoms.add_(torch::tensor({0.3f, -0.2f, 0.45f}));
  atoms.copy_(atoms - torch::round(atoms));
  EXPECT_LT((net->flow(shifted, t, in) - y).abs().max().item<float>(), 1e-5f);
  // Permutation of the 7 atoms (features move with them).
  auto perm = torch::tensor({0, 1, 8, 2, 7, 3, 6, 4, 5}, torch::kLong);
  dit::FlowInputs pin = in;
  pin.features = in.features.index_select(1, perm);
  pin.mask = in.mask.index_select(1, perm);
  auto yp = net->flow(x.index_select(1, perm), t, pin);
  EXPECT_LT((yp - y.index_select(1, perm)).abs().max().item<float>(), 1e-5f);
  // The inference path (fused blocks) computes the same.
  auto yi = net->inference()(x, t, in, {});
  EXPECT_LT((yi - y).abs().max().item<float>(), 1e-4f);
  // Padding: the same cell in a batch padded to 12 tokens, beside a smaller one.
  std::vector<dit::crystal::CrystalRequest> two = {requests[0], {dit::crystal::parse_composition("NaCl"), 0}};
  auto in2 = domain.encode(two);
  auto x2 = torch::zeros({2, in2.mask.size(1), 3});
  x2[0].narrow(0, 0, 9).copy_(x[0]);
  auto y2 = net->flow(x2, torch::full({2}, 0.4f), in2);
  EXPECT_LT((y2[0].narrow(0, 0, 9) - y[0]).abs().max().item<float>(), 1e-5f);
  // A crystal without the pair inputs is not translation invariant (the test can fail).
  auto plain = dit::crystal::make_crystal_model(32, 2, 2);
  randomize(*plain);
  plain->eval();
  EXPECT_GT((plain->flow(shifted, t, in) - plain->flow(x, t, in)).abs().max().item<float>(), 1e-3f);
  // The file keeps the configuration.
  const std::string path = temp_dir() + "/pairs.safetensors";
  dit::crystal::save_crystal_model(path, *net, {});
  auto back = dit::crystal::load_crystal_model(path);
  EXPECT_EQ(back.net->config().periodic_pairs, 3);
  EXPECT_EQ(back.net->config().pair_channels, 8);
  EXPECT_LT((back.net->flow(x, t, in) - y).abs().max().item<float>(), 1e-6f);
#ifdef DIT_BENCH
  // dit-bench's PyTorch baseline implements the pair inputs independently: its outputs on these
  // weights must match the engine's (it fails the run above 1e-4 x max |output|), and its
  // vectorised pair inputs must match its loop version.
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3-torch";
  auto r = dit::test::run_program(DIT_BENCH, "crystal --model " + path + " --cells 3 --steps 2 --chunk 3 -t 1 --warmup 0 "
                                  "--warmup-time 0 --iters 1 --min-iters 1 --sample-warmup 0 --sample-repeats 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("periodic pair inputs (3 frequencies x 8 channels"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mixed batch [8, 22], padded: max |engine - pytorch|"), std::string::npos) << r.output;
#endif
}
