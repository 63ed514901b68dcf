#include "domains/protein/dssp.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "domains/protein/pdb_io.h"
#include "protein_test_util.h"

namespace dit::protein {
namespace {

// Per-residue agreement of two DSSP strings, in 3 states (H,G,I / E,B / rest) or 8 letters.
double agreement(const std::string& a, const std::string& b, bool three) {
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (y == 'P') y = '-';  // mkdssp 4's polyproline letter: loop for us
    same += three ? three_state(x) == three_state(y) : x == y;
  }
  return a.empty() ? 0 : static_cast<double>(same) / static_cast<double>(a.size());
}

TEST(ProteinDssp, HBondEnergyOfAnIdealBond) {
  // Linear N-H...O=C with N...O 2.9 A: E = 27.888 (1/2.9 + 1/3.1 - 1/1.9 - 1/4.13) = -2.87 kcal/mol.
  const Vec3 n{0, 0, 0}, h{1.0, 0, 0}, o{2.9, 0, 0}, c{4.13, 0, 0};
  EXPECT_NEAR(hbond_energy(n, h, c, o), 27.888 * (1 / 2.9 + 1 / 3.13 - 1 / 1.9 - 1 / 4.13), 1e-9);
  EXPECT_LT(hbond_energy(n, h, c, o), -0.5);
  // Far apart: no bond.
  const Vec3 o2{8.0, 0, 0}, c2{9.23, 0, 0};
  EXPECT_GT(hbond_energy(n, h, c2, o2), -0.5);
}

TEST(ProteinDssp, AgreesWithMkdsspOnRealChains) {
  size_t total = 0, same3 = 0, same8 = 0;
  for (const std::string& name : test::fixture_names()) {
    const Backbone b = read_backbone_pdb(test::fixture_pdb(name));
    const SecondaryStructure ss = assign_secondary_structure(b);
    const std::string ref = test::read_mkdssp(test::data_dir() + "/" + name + ".mkdssp.txt");
    ASSERT_EQ(ss.dssp.size(), b.size()) << name;
    ASSERT_EQ(ref.size(), b.size()) << name;
    const double a3 = agreement(ss.dssp, ref, true), a8 = agreement(ss.dssp, ref, false);
    std::printf("[ dssp     ] %-7s n=%3zu  3-state %.3f  8-state %.3f  helix %.2f strand %.2f coil %.2f\n"
                "             ours    %s\n             mkdssp  %s\n",
                name.c_str(), b.size(), a3, a8, ss.helix, ss.strand, ss.coil, ss.dssp.c_str(), ref.c_str());
    EXPECT_GE(a3, 0.90) << name;
    EXPECT_NEAR(ss.helix + ss.strand + ss.coil, 1.0, 1e-12);
    total += b.size();
    same3 += static_cast<size_t>(a3 * b.size() + 0.5);
    same8 += static_cast<size_t>(a8 * b.size() + 0.5);
  }
  const double overall3 = static_cast<double>(same3) / total, overall8 = static_cast<double>(same8) / total;
  std::printf("[ dssp     ] all %zu residues: 3-state agreement %.4f, 8-state %.4f\n", total, overall3, overall8);
  EXPECT_GE(overall3, 0.95);
}

TEST(ProteinDssp, HelixAndStrandChainsAreRecognised) {
  // 2XS6_A is mostly helical, 2VDF_A mostly beta (mkdssp: 53% H+G+I / 74% E+B).
  const SecondaryStructure helix = assign_secondary_structure(read_backbone_pdb(test::fixture_pdb("2XS6_A")));
  const SecondaryStructure strand = assign_secondary_structure(read_backbone_pdb(test::fixture_pdb("2VDF_A")));
  EXPECT_GT(helix.helix, 0.4);
  EXPECT_LT(helix.strand, 0.1);
  EXPECT_GT(strand.strand, 0.6);
  EXPECT_LT(strand.helix, 0.1);
}

TEST(ProteinDssp, TinyChainsAreCoil) {
  Backbone b = read_backbone_pdb(test::fixture_pdb("2XS6_A"));
  for (size_t keep : {0u, 1u, 3u}) {
    Backbone t = b;
    t.n.resize(keep), t.ca.resize(keep), t.c.resize(keep), t.o.resize(keep), t.cb.resize(keep);
    t.sequence.resize(keep);
    const SecondaryStructure ss = assign_secondary_structure(t);
    EXPECT_EQ(ss.dssp, std::string(keep, '-'));
  }
}

}  // namespace
}  // namespace dit::protein
