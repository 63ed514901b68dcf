// CA trace -> backbone: the shipped table, its loader's errors, and the rebuild accuracy on real
// held-out chains (not used to build the table).
#include "domains/protein/rebuild.h"

#include <dit/error.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/domains/protein/rebuild_fixtures.h"

namespace dit::protein {
namespace {

using testing::dist2;
using testing::read_fixture;

const RebuildTable& table() {
  static const RebuildTable t = load_rebuild_table(testing::rebuild_table_path());
  return t;
}

TEST(RebuildTable, ShippedTableLoads) {
  const auto& t = table();
  ASSERT_EQ(t.n.values, 3);
  ASSERT_EQ(t.co.values, 6);
  ASSERT_GE(t.n.levels.size(), 2u);
  EXPECT_GT(t.n.levels.front().values.size(), 1000u);
  EXPECT_GT(t.co.levels.front().values.size(), 1000u);
  EXPECT_TRUE(t.n.levels.back().axes.empty());
}

std::string table_load_error(const std::string& text) {
  const std::string path = ::testing::TempDir() + "rebuild_table_bad.txt";
  std::ofstream(path) << text;
  try {
    load_rebuild_table(path);
  } catch (const Error& e) {
    std::remove(path.c_str());
    return e.what();
  }
  std::remove(path.c_str());
  return "(no error)";
}

TEST(RebuildTable, ErrorsNameFileLineAndField) {
  const std::string head = "# c\ndit-rebuild-table 1\ngroup N 3 1\n";
  EXPECT_NE(table_load_error("").find("empty file"), std::string::npos);
  EXPECT_NE(table_load_error("hello 1\n").find(":1: expected the header"), std::string::npos);
  EXPECT_NE(table_load_error("dit-rebuild-table 2\n").find("version 2"), std::string::npos);
  std::string e = table_load_error(head + "level 1 phi 80 10 7 bins 0\n");
  EXPECT_NE(e.find("rebuild_table_bad.txt:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown feature 'phi'"), std::string::npos) << e;
  e = table_load_error(head + "level 1 theta 80 10 7 bins 1\n7 3 1 2 3\n");
  EXPECT_NE(e.find(":5: bin index 7 outside"), std::string::npos) << e;
  e = table_load_error(head + "level 0 bins 1\n0 3 1 2\n");
  EXPECT_NE(e.find("expected 3 finite values"), std::string::npos) << e;
  e = table_load_error(head + "level 1 theta 80 10 7 bins 1\n0 3 1 2 3\n");
  EXPECT_NE(e.find("global mean"), std::string::npos) << e;
  e = table_load_error(head + "level 0 bins 1\n0 3 1 2 3\nend\n");
  EXPECT_NE(e.find("missing group CO"), std::string::npos) << e;
  e = table_load_error(head + "level 0 bins 1\n0 3 1 2 3\n");
  EXPECT_NE(e.find("missing 'end'"), std::string::npos) << e;
  EXPECT_NE(table_load_error("dit-rebuild-table 1\ngroup N 3 1\nlevel 0 bins 2\n0 3 1 2 3\n").find("end of file after 1 of 2"),
            std::string::npos);
  try {
    load_rebuild_table("/nonexistent/table.txt");
    ADD_FAILURE() << "no error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("/nonexistent/table.txt"), std::string::npos);
  }
}

// Rebuilds each held-out chain from its CA trace; N/C/O RMSD to the true atoms (no superposition:
// CA is kept, so the frames coincide).
TEST(Rebuild, RealChainsFromCaTrace) {
  double sum_all = 0, sum_n = 0, sum_c = 0, sum_o = 0, sum_cb = 0;
  size_t res = 0, ncb = 0;
  for (const auto& name : testing::rebuild_fixture_names()) {
    Backbone truth = read_fixture(name);
    Backbone bb = rebuild_backbone(truth.ca, table());
    ASSERT_EQ(bb.size(), truth.size());
    EXPECT_EQ(bb.sequence, std::string(truth.size(), 'A'));
    double sn = 0, sc = 0, so = 0, scb = 0, s_int = 0;
    size_t n_cb = 0, n_int = 0;
    for (size_t i = 0; i < bb.size(); ++i) {
      EXPECT_EQ(bb.ca[i], truth.ca[i]);
      double dn = dist2(bb.n[i], truth.n[i]), dc = dist2(bb.c[i], truth.c[i]), dd = dist2(bb.o[i], truth.o[i]);
      sn += dn;
      sc += dc;
      so += dd;
      if (i >= 2 && i + 2 < bb.size()) {
        s_int += dn + dc + dd;
        ++n_int;
      }
      if (std::isfinite(truth.cb[i][0])) {
        scb += dist2(bb.cb[i], truth.cb[i]);
        ++n_cb;
      }
    }
    const double L = static_cast<double>(bb.size());
    double rmsd = std::sqrt((sn + sc + so) / (3 * L));
    for (size_t i : {size_t{0}, size_t{1}, bb.size() - 2, bb.size() - 1})
      std::printf("  %s residue %zu: N %.2f C %.2f O %.2f A\n", name.c_str(), i, std::sqrt(dist2(bb.n[i], truth.n[i])),
                  std::sqrt(dist2(bb.c[i], truth.c[i])), std::sqrt(dist2(bb.o[i], truth.o[i])));
    std::printf("rebuild %-7s L=%3zu  N/C/O RMSD %.3f A (N %.3f, C %.3f, O %.3f; interior %.3f)  CB %.3f A\n",
                name.c_str(), bb.size(), rmsd, std::sqrt(sn / L), std::sqrt(sc / L), std::sqrt(so / L),
                std::sqrt(s_int / (3.0 * n_int)), std::sqrt(scb / n_cb));
    EXPECT_LT(rmsd, 0.5) << name;
    sum_n += sn, sum_c += sc, sum_o += so, sum_cb += scb;
    sum_all += sn + sc + so;
    res += bb.size();
    ncb += n_cb;
  }
  double rmsd = std::sqrt(sum_all / (3.0 * res));
  std::printf("rebuild all %zu residues: N/C/O RMSD %.3f A (N %.3f, C %.3f, O %.3f), CB %.3f A\n", res, rmsd,
              std::sqrt(sum_n / res), std::sqrt(sum_c / res), std::sqrt(sum_o / res), std::sqrt(sum_cb / ncb));
  EXPECT_LT(rmsd, 0.45);
}

// The CB formula on the true N, CA, C reproduces the fixture's CB (promod3's reconstruction) with
// the same (L) handedness; on rebuilt residues CA-CB stays near 1.53 A.
TEST(Rebuild, IdealCbIsLChiral) {
  auto volume = [](const Vec3& n, const Vec3& ca, const Vec3& c, const Vec3& cb) {
    Vec3 a{n[0] - ca[0], n[1] - ca[1], n[2] - ca[2]}, b{c[0] - ca[0], c[1] - ca[1], c[2] - ca[2]},
        d{cb[0] - ca[0], cb[1] - ca[1], cb[2] - ca[2]};
    return (a[1] * b[2] - a[2] * b[1]) * d[0] + (a[2] * b[0] - a[0] * b[2]) * d[1] + (a[0] * b[1] - a[1] * b[0]) * d[2];
  };
  for (const auto& name : testing::rebuild_fixture_names()) {
    Backbone truth = read_fixture(name);
    Backbone bb = rebuild_backbone(truth.ca, table());
    double worst = 0, cb_min = 9, cb_max = 0;
    for (size_t i = 0; i < truth.size(); ++i) {
      double r = std::sqrt(dist2(bb.cb[i], bb.ca[i]));
      cb_min = std::min(cb_min, r), cb_max = std::max(cb_max, r);
      EXPECT_NEAR(r, 1.53, 1e-6) << name << " " << i;
      EXPECT_GT(volume(bb.n[i], bb.ca[i], bb.c[i], bb.cb[i]) * volume(bb.n[i], bb.ca[i], bb.c[i], ideal_cb(bb.n[i], bb.ca[i], bb.c[i])), 0);
      if (!std::isfinite(truth.cb[i][0])) continue;
      Vec3 cb = ideal_cb(truth.n[i], truth.ca[i], truth.c[i]);
      worst = std::max(worst, std::sqrt(dist2(cb, truth.cb[i])));
      EXPECT_GT(volume(truth.n[i], truth.ca[i], truth.c[i], cb) * volume(truth.n[i], truth.ca[i], truth.c[i], truth.cb[i]), 0)
          << name << " " << i;
    }
    std::printf("%s: rebuilt CA-CB %.3f..%.3f A; ideal CB on the true N/CA/C vs the fixture's CB: max %.3f A\n",
                name.c_str(), cb_min, cb_max, worst);
    EXPECT_LT(worst, 0.25) << name;  // promod3 builds its CB with its own constants
  }
}

TEST(Rebuild, ShortChainsAndTermini) {
  Backbone truth = read_fixture("1J34_B");
  for (size_t L : {0, 1, 2, 3, 4, 5}) {
    std::vector<Vec3> ca(truth.ca.begin(), truth.ca.begin() + L);
    Backbone bb = rebuild_backbone(ca, table());
    ASSERT_EQ(bb.size(), L);
    for (size_t i = 0; i < L; ++i) {
      for (const auto* v : {&bb.n[i], &bb.c[i], &bb.o[i], &bb.cb[i]})
        for (double x : *v) EXPECT_TRUE(std::isfinite(x)) << "L=" << L << " residue " << i;
      EXPECT_NEAR(std::sqrt(dist2(bb.n[i], bb.ca[i])), 1.46, 0.1) << "L=" << L;
      EXPECT_NEAR(std::sqrt(dist2(bb.c[i], bb.ca[i])), 1.52, 0.1) << "L=" << L;
    }
  }
  // Degenerate traces do not produce NaN: coincident and collinear CAs.
  std::vector<Vec3> line{{0, 0, 0}, {3.8, 0, 0}, {7.6, 0, 0}, {7.6, 0, 0}, {11.4, 0, 0}};
  Backbone bb = rebuild_backbone(line, table());
  for (size_t i = 0; i < bb.size(); ++i)
    for (double x : bb.o[i]) EXPECT_TRUE(std::isfinite(x));
  EXPECT_THROW(rebuild_backbone({{0, 0, 0}, {NAN, 0, 0}}, table()), Error);
}

}  // namespace
}  // namespace dit::protein
