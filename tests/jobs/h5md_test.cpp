// H5MD files: appends, reads, attributes, truncation, structures of varying size; every file is
// also checked against the H5MD rules by h5py (tests/jobs/check_h5md.py).
#include <dit/error.h>
#include <dit/h5md.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <dit/fs.h>
#include <fstream>

namespace {

namespace fs = dit::fs;
using dit::h5md::File;
using dit::h5md::Mode;

std::string fresh(const std::string& name) {
  auto dir = fs::temp_directory_path() / "dit_h5md_test";
  fs::create_directories(dir);
  auto path = (dir / name).string();
  fs::remove(path);
  return path;
}

// h5py reads the file and checks the H5MD layout rules; returns the script's exit code.
int check_with_h5py(const std::string& path) {
  std::string cmd = "/usr/bin/python3 " DIT_SOURCE_DIR "/tests/jobs/check_h5md.py " + path;
  return std::system(cmd.c_str());
}

TEST(H5md, AppendReadAndAttributes) {
  const auto path = fresh("rows.h5");
  {
    File f(path, Mode::Create);
    f.append_rows("data/x", torch::arange(6, torch::kFloat32).reshape({3, 2}));
    f.append_rows("data/x", torch::arange(6, 10, torch::kFloat32).reshape({2, 2}));
    f.append_frames("observables/score", torch::tensor({0.5, 1.5}), torch::tensor({7, 9}));
    f.write_json("parameters", {{"sampler", {{"name", "euler"}, {"steps", 4}}}, {"seed", 3},
                                {"classes", {1, 2}}, {"flag", true}});
    f.flush();
    EXPECT_THROW(f.append_rows("data/x", torch::zeros({1, 3})), dit::Error);          // inner shape
    EXPECT_THROW(f.append_rows("data/x", torch::zeros({1, 2}, torch::kInt64)), dit::Error);  // dtype
    EXPECT_THROW(File(path, Mode::Create), dit::Error);  // exists
  }
  File f(path, Mode::Read);
  EXPECT_EQ(f.rows("data/x"), 5);
  EXPECT_TRUE(torch::equal(f.read("data/x", 1, 3), torch::arange(2, 8, torch::kFloat32).reshape({3, 2})));
  EXPECT_THROW(f.read("data/x", 4, 2), dit::Error);
  EXPECT_TRUE(torch::equal(f.read("observables/score/step"), torch::tensor({7, 9}, torch::kInt64)));
  EXPECT_EQ(f.string_attribute("parameters/sampler", "name").value(), "euler");
  EXPECT_FALSE(f.string_attribute("parameters", "nope").has_value());
  EXPECT_EQ(f.children("parameters"), (std::vector<std::string>{"sampler"}));
  EXPECT_THROW(f.append_rows("data/x", torch::zeros({1, 2})), dit::Error);  // read-only
  EXPECT_EQ(check_with_h5py(path), 0);
}

TEST(H5md, TruncateDropsRowsPastTheLastCompleteBatch) {
  const auto path = fresh("truncate.h5");
  {
    File f(path, Mode::Create);
    f.append_rows("a", torch::zeros({5, 3}));
    f.append_rows("g/b", torch::zeros({4}, torch::kInt64));
    f.truncate_rows("", 3);
    EXPECT_EQ(f.rows("a"), 3);
    EXPECT_EQ(f.rows("g/b"), 3);
    EXPECT_EQ(f.extendable_datasets(), (std::vector<std::string>{"a", "g/b"}));
  }
}

TEST(H5md, StructuresOfDifferentSizesAreReadWithoutScanning) {
  const auto path = fresh("structures.h5");
  dit::h5md::ParticleGroupSpec ligand{"ligand", 5, "none", 4};
  dit::h5md::ParticleGroupSpec crystal{"crystal", 4, "periodic", 0};
  std::vector<dit::h5md::StructureSample> ligands(2), crystals(1);
  ligands[0] = {10, torch::rand({3, 3}), torch::tensor({6, 7, 8}), torch::tensor({{0, 1}, {1, 2}}), {}};
  ligands[1] = {11, torch::rand({5, 3}), torch::tensor({6, 6, 6, 8, 1}), torch::tensor({{0, 1}}), {}};
  crystals[0] = {0, torch::rand({2, 3}), torch::tensor({11, 17}), {}, torch::eye(3) * 5.64};
  {
    File f(path, Mode::Create);
    dit::h5md::define_particle_group(f, ligand);
    dit::h5md::define_particle_group(f, crystal);
    dit::h5md::append_structures(f, ligand, ligands);
    dit::h5md::append_structures(f, crystal, crystals);
    dit::h5md::append_observable(f, "score", torch::tensor({-7.5, -6.0}), torch::tensor({10, 11}));
    auto too_big = ligands;
    too_big[0].positions = torch::rand({6, 3});
    too_big[0].species = torch::ones({6}, torch::kInt64);
    EXPECT_THROW(dit::h5md::append_structures(f, ligand, too_big), dit::Error);
    f.flush();
  }
  File f(path, Mode::Read);
  // Sample 11 is frame 1: one hyperslab, then its atom count cuts the padding.
  auto count = f.read("observables/ligand/atom_count/value", 1, 1)[0].item<int64_t>();
  auto pos = f.read("particles/ligand/position/value", 1, 1)[0];
  EXPECT_EQ(count, 5);
  EXPECT_TRUE(torch::equal(pos.narrow(0, 0, count), ligands[1].positions));
  auto first = f.read("particles/ligand/position/value", 0, 1)[0];
  EXPECT_TRUE(torch::isnan(first.narrow(0, 3, 2)).all().item<bool>());
  EXPECT_TRUE(torch::equal(f.read("particles/ligand/species/value", 0, 1)[0],
                           torch::tensor({6, 7, 8, -1, -1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(f.read("connectivity/ligand_bonds/value", 0, 1)[0],
                           torch::tensor({{0, 1}, {1, 2}, {-1, -1}, {-1, -1}}, torch::kInt64)));
  EXPECT_TRUE(torch::allclose(f.read("particles/crystal/box/edges/value")[0],
                              torch::eye(3, torch::kFloat64) * 5.64));
  EXPECT_EQ(check_with_h5py(path), 0);
}

TEST(H5md, BadFilesGiveClearErrors) {
  const auto path = fresh("not_h5.h5");
  { std::ofstream(path) << "not an HDF5 file"; }
  try {
    File f(path, Mode::Read);
    FAIL() << "opened a text file";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(File(fresh("missing.h5"), Mode::Read), dit::Error);
  EXPECT_THROW(File("/nonexistent/dir/x.h5", Mode::Create), dit::Error);
}

}  // namespace
