#include "domains/protein/pdb_io.h"

#include <dit/error.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <dit/fs.h>
#include <fstream>
#include <sstream>

#include "domains/protein/backbone.h"
#include "protein_test_util.h"

namespace dit::protein {
namespace {

namespace fs = dit::fs;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("dit_protein_" + std::to_string(::getpid()) + "_" + name);
}

void expect_same(const std::vector<Vec3>& a, const std::vector<Vec3>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    for (int k = 0; k < 3; ++k) {
      if (std::isnan(a[i][k])) {
        EXPECT_TRUE(std::isnan(b[i][k])) << what << " residue " << i;
      } else {
        ASSERT_NEAR(a[i][k], b[i][k], tol) << what << " residue " << i << " coordinate " << k;
      }
    }
}

TEST(ProteinPdbIo, ReadsFixtureChain) {
  const Backbone b = read_backbone_pdb(test::fixture_pdb("1CTF_A"));
  EXPECT_EQ(b.name, "1CTF_A");
  ASSERT_EQ(b.size(), 68u);
  EXPECT_EQ(b.n.size(), 68u);
  EXPECT_EQ(b.o.size(), 68u);
  ASSERT_EQ(b.cb.size(), 68u);
  EXPECT_EQ(b.sequence.size(), 68u);
  // Glycines have no CB (NaN), every other residue has one.
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(has_cb(b, i), b.sequence[i] != 'G') << i;
  // First atom of the file: ATOM 1 N of residue 1.
  EXPECT_NEAR(std::sqrt(std::pow(b.ca[0][0] - b.n[0][0], 2) + std::pow(b.ca[0][1] - b.n[0][1], 2) +
                        std::pow(b.ca[0][2] - b.n[0][2], 2)),
              1.46, 0.05);
}

TEST(ProteinPdbIo, RoundTripExactToPdbPrecision) {
  for (const std::string& name : test::fixture_names()) {
    const Backbone a = read_backbone_pdb(test::fixture_pdb(name));
    const fs::path path = temp_path(name + ".pdb");
    write_backbone_pdb(a, path.string());
    const Backbone b = read_backbone_pdb(path.string());
    fs::remove(path);
    EXPECT_EQ(a.sequence, b.sequence) << name;
    // Both files hold 8.3f coordinates: a second round trip is exact to 0.0005 A.
    expect_same(a.n, b.n, 5e-4, "N");
    expect_same(a.ca, b.ca, 5e-4, "CA");
    expect_same(a.c, b.c, 5e-4, "C");
    expect_same(a.o, b.o, 5e-4, "O");
    expect_same(a.cb, b.cb, 5e-4, "CB");
    // Writing the re-read chain gives the same bytes (apart from the HEADER's id).
    std::ostringstream sa, sb;
    Backbone b2 = b;
    b2.name = a.name;
    write_backbone_pdb(a, sa);
    write_backbone_pdb(b2, sb);
    EXPECT_EQ(sa.str(), sb.str()) << name;
  }
}

TEST(ProteinPdbIo, WritesFixedColumnRecords) {
  Backbone b = read_backbone_pdb(test::fixture_pdb("1CTF_A"));
  b.sequence[1] = 'Z';  // unknown letter -> ALA
  std::ostringstream out;
  write_backbone_pdb(b, out);
  std::istringstream in(out.str());
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("HEADER", 0), 0u);
  std::getline(in, line);
  EXPECT_EQ(line.size(), 78u);
  EXPECT_EQ(line.substr(0, 6), "ATOM  ");
  EXPECT_EQ(line.substr(12, 4), " N  ");
  EXPECT_EQ(line.substr(17, 3), three_letter_code(b.sequence[0]));
  EXPECT_EQ(line[21], 'A');
  EXPECT_EQ(line.substr(22, 4), "   1");
  EXPECT_EQ(line.substr(76, 2), " N");
  int atoms = 1, ter = 0, end = 0;
  bool residue2_is_ala = false;
  while (std::getline(in, line)) {
    if (line.rfind("ATOM", 0) == 0) {
      ++atoms;
      if (line.substr(22, 4) == "   2") residue2_is_ala = line.substr(17, 3) == "ALA";
    }
    ter += line.rfind("TER", 0) == 0;
    end += line == "END";
  }
  int expected = 0;
  for (char s : b.sequence) expected += s == 'G' ? 4 : 5;
  EXPECT_EQ(atoms, expected);
  EXPECT_EQ(ter, 1);
  EXPECT_EQ(end, 1);
  EXPECT_TRUE(residue2_is_ala);
}

TEST(ProteinPdbIo, BuildCbMatchesIdealGeometry) {
  Backbone b = read_backbone_pdb(test::fixture_pdb("2XS6_A"));
  const Backbone original = b;
  build_cb(b);
  ASSERT_EQ(b.cb.size(), b.size());
  double sum = 0, count = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b.sequence[i] == 'G') {
      EXPECT_FALSE(has_cb(b, i));
      continue;
    }
    const double d = std::sqrt(std::pow(b.cb[i][0] - b.ca[i][0], 2) + std::pow(b.cb[i][1] - b.ca[i][1], 2) +
                               std::pow(b.cb[i][2] - b.ca[i][2], 2));
    // The formula is exact for ideal N-CA-C; distorted real residues move CB by a little.
    EXPECT_NEAR(d, 1.53, 0.1) << i;
    sum += d, count += 1;
    // promod3's CBs are ideal too: the rebuilt one lies within 0.2 A of the file's.
    const double moved = std::sqrt(std::pow(b.cb[i][0] - original.cb[i][0], 2) +
                                   std::pow(b.cb[i][1] - original.cb[i][1], 2) +
                                   std::pow(b.cb[i][2] - original.cb[i][2], 2));
    EXPECT_LT(moved, 0.2) << i;
  }
  EXPECT_NEAR(sum / count, 1.53, 0.01);
}

void expect_error_naming(const std::string& path, const std::string& also = "") {
  try {
    read_backbone_pdb(path);
    FAIL() << "no error for " << path;
  } catch (const dit::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    if (!also.empty()) {
      EXPECT_NE(what.find(also), std::string::npos) << what;
    }
  }
}

TEST(ProteinPdbIo, BadInputThrowsNamingTheFile) {
  expect_error_naming((temp_path("does_not_exist.pdb")).string(), "not found");

  const fs::path empty = temp_path("empty.pdb");
  { std::ofstream(empty.string()); }
  expect_error_naming(empty.string());
  fs::remove(empty);

  // Drop the CA of residue 5 (file numbering of 2XS6 starts at its own resnum).
  std::ifstream in(test::fixture_pdb("2XS6_A"));
  std::string line, text, residue;
  int residues_seen = 0;
  std::string last;
  while (std::getline(in, line)) {
    if (line.rfind("ATOM", 0) == 0) {
      if (line.substr(22, 4) != last) {
        last = line.substr(22, 4);
        ++residues_seen;
      }
      if (residues_seen == 5 && line.substr(12, 4) == " CA ") {
        residue = last;
        continue;
      }
    }
    text += line + "\n";
  }
  const fs::path missing = temp_path("missing_ca.pdb");
  { std::ofstream(missing.string()) << text; }
  while (!residue.empty() && residue[0] == ' ') residue.erase(0, 1);
  expect_error_naming(missing.string(), "missing backbone atom CA");
  try {
    read_backbone_pdb(missing.string());
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("chain A residue"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(" " + residue), std::string::npos) << e.what();
  }
  fs::remove(missing);

  // A chain that is not there.
  try {
    read_backbone_pdb(test::fixture_pdb("2XS6_A"), "Q");
    FAIL();
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chain 'Q'"), std::string::npos) << e.what();
  }
}

TEST(ProteinPdbIo, ReadsMmcifAndNamedChain) {
  // gemmi writes nothing here; an mmCIF written by hand from the fixture's first two residues.
  const Backbone a = read_backbone_pdb(test::fixture_pdb("1CTF_A"), "A");
  std::ostringstream cif;
  cif << "data_test\nloop_\n_atom_site.group_PDB\n_atom_site.id\n_atom_site.type_symbol\n"
         "_atom_site.label_atom_id\n_atom_site.label_alt_id\n_atom_site.label_comp_id\n_atom_site.label_asym_id\n"
         "_atom_site.label_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n"
         "_atom_site.occupancy\n_atom_site.B_iso_or_equiv\n"
         "_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.pdbx_PDB_model_num\n";
  int id = 1;
  for (int i = 0; i < 2; ++i) {
    const char* names[4] = {"N", "CA", "C", "O"};
    const std::vector<Vec3>* xyz[4] = {&a.n, &a.ca, &a.c, &a.o};
    for (int k = 0; k < 4; ++k)
      cif << "ATOM " << id++ << " " << names[k][0] << " " << names[k] << " . " << three_letter_code(a.sequence[i])
          << " A " << i + 1 << " " << (*xyz[k])[i][0] << " " << (*xyz[k])[i][1] << " " << (*xyz[k])[i][2]
          << " 1.0 0.0 B " << i + 1 << " 1\n";
  }
  const fs::path path = temp_path("two.cif");
  { std::ofstream(path.string()) << cif.str(); }
  const Backbone b = read_backbone_pdb(path.string());
  const Backbone named = read_backbone_pdb(path.string(), "B");  // auth_asym_id
  fs::remove(path);
  EXPECT_EQ(named.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(b.cb.empty());
  EXPECT_EQ(b.sequence, a.sequence.substr(0, 2));
  EXPECT_NEAR(b.ca[1][0], a.ca[1][0], 1e-6);
}

}  // namespace
}  // namespace dit::protein
