// Restrained OpenMM relaxation: noisy real chains and rebuilt chains relax to ideal geometry
// while the CAs stay put; the time per chain is printed.
#include "domains/protein/relax.h"

#include <dit/error.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "domains/protein/rebuild.h"
#include "tests/domains/protein/rebuild_fixtures.h"

namespace dit::protein {
namespace {

using testing::read_fixture;

void print(const char* what, const GeometryDeviation& g) {
  std::printf("  %-7s bonds max %.3f rms %.3f A | angles max %.2f rms %.2f deg | omega max %.1f deg | D-CB %d\n", what,
              g.bond_max, g.bond_rms, g.angle_max, g.angle_rms, g.omega_max, g.d_residues);
}

void expect_ideal(const Backbone& bb, const RelaxReport& r, const GeometryDeviation& before) {
  GeometryDeviation after = geometry_deviation(bb);
  std::printf("%s (L=%zu, %s): E %.1f -> %.1f kJ/mol, RMS force %.2f kJ/mol/nm, <= %d steps, CA moved %.3f A, cis %d\n",
              bb.name.c_str(), bb.size(), r.platform.c_str(), r.energy_before, r.energy_after, r.rms_force_after,
              r.iterations, r.ca_rmsd, r.cis_peptides);
  print("before", before);
  print("after", after);
  EXPECT_LT(after.bond_max, 0.05) << bb.name;
  EXPECT_LT(after.angle_max, 5.0) << bb.name;
  EXPECT_EQ(after.d_residues, 0) << bb.name;
  EXPECT_LT(r.ca_rmsd, 0.2) << bb.name;
  EXPECT_LT(r.energy_after, r.energy_before);
}

TEST(Relax, NoisyRealChainsBecomeIdeal) {
  for (const auto& name : testing::rebuild_fixture_names()) {
    Backbone bb = read_fixture(name);
    std::mt19937 gen(17);
    std::normal_distribution<double> noise(0.0, 0.3 / std::sqrt(3.0));  // 0.3 A RMS displacement
    for (auto* atoms : {&bb.n, &bb.c, &bb.o})
      for (auto& p : *atoms)
        for (double& x : p) x += noise(gen);
    GeometryDeviation before = geometry_deviation(bb);
    RelaxReport r = relax_backbone(bb);
    expect_ideal(bb, r, before);
  }
}

TEST(Relax, RebuiltChainsBecomeIdeal) {
  const RebuildTable table = load_rebuild_table(testing::rebuild_table_path());
  for (const auto& name : testing::rebuild_fixture_names()) {
    Backbone truth = read_fixture(name);
    Backbone bb = rebuild_backbone(truth.ca, table);
    bb.name = name + " rebuilt";
    GeometryDeviation before = geometry_deviation(bb);
    RelaxReport r = relax_backbone(bb);
    expect_ideal(bb, r, before);
    double s = 0;
    for (size_t i = 0; i < bb.size(); ++i)
      s += testing::dist2(bb.n[i], truth.n[i]) + testing::dist2(bb.c[i], truth.c[i]) + testing::dist2(bb.o[i], truth.o[i]);
    std::printf("  N/C/O RMSD to the true atoms after relaxation: %.3f A\n", std::sqrt(s / (3.0 * bb.size())));
  }
}

TEST(Relax, TimePerChain) {
  const RebuildTable table = load_rebuild_table(testing::rebuild_table_path());
  Backbone chain = read_fixture("4FIO_B");
  for (const char* platform : {"CPU", "Reference"}) {
    for (size_t L : {100, 300}) {
      Backbone bb = rebuild_backbone(testing::head(chain, L).ca, table);
      bb.name = "4FIO_B:" + std::to_string(L);
      RelaxOptions opt;
      opt.platform = platform;
      auto t0 = std::chrono::steady_clock::now();
      RelaxReport r = relax_backbone(bb, opt);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::printf("relax time L=%zu asked %s ran %s (1 thread): %.1f ms, <= %d steps, E %.1f -> %.1f kJ/mol\n", L,
                  platform, r.platform.c_str(), ms, r.iterations, r.energy_before, r.energy_after);
      EXPECT_LT(geometry_deviation(bb).bond_max, 0.05);
    }
  }
}

TEST(Relax, ErrorsAndEmpty) {
  Backbone empty;
  EXPECT_EQ(relax_backbone(empty).particles, 0);
  Backbone bb = read_fixture("1Q8C_A");
  bb.o.pop_back();
  try {
    relax_backbone(bb);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("field o"), std::string::npos) << e.what();
  }
  RelaxOptions opt;
  opt.platform = "CUDA";
  Backbone ok = read_fixture("1Q8C_A");
  EXPECT_THROW(relax_backbone(ok, opt), Error);
}

}  // namespace
}  // namespace dit::protein
