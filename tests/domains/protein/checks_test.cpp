// The backbone checks on real chains (they pass) and on perturbed copies (the right check fails).
#include <dit/check.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <dit/fs.h>
#include <map>

#include "domains/protein/backbone.h"
#include "domains/protein/dssp.h"
#include "domains/protein/pdb_io.h"
#include "protein_test_util.h"

namespace dit::protein {
namespace {

const CheckRegistry<Backbone>& registry() { return CheckRegistry<Backbone>::instance(); }

// Whether every value of the check named `check` passes (values are found by the check's
// own value names, listed here).
const std::map<std::string, std::vector<std::string>>& value_names() {
  static const std::map<std::string, std::vector<std::string>> names = {
      {"bond_angles", {"bond_angle_outlier_fraction", "bond_angle_max_z"}},
      {"bond_lengths", {"bond_length_outlier_fraction", "bond_length_max_z"}},
      {"ca_ca_distance", {"ca_ca_outlier_fraction", "ca_ca_max_deviation"}},
      {"ca_chirality", {"chirality_wrong_fraction", "min_chiral_volume"}},
      {"clashes", {"min_nonadjacent_ca_ca", "backbone_clashscore", "max_backbone_overlap"}},
      {"peptide_planarity", {"omega_twisted_fraction", "omega_max_deviation"}},
      {"radius_of_gyration", {"rg_ratio_upper", "rg_ratio_lower"}},
      {"ramachandran", {"rama_allowed_fraction"}},
  };
  return names;
}

bool passes(const CheckReport& report, const std::string& check) {
  for (const std::string& v : value_names().at(check)) {
    const CheckValue* value = report.find(v);
    if (value == nullptr) ADD_FAILURE() << "no value " << v << " for check " << check;
    if (value == nullptr || !value->pass) return false;
  }
  return true;
}

std::string describe(const CheckReport& report) {
  std::string s;
  char buf[160];
  for (const CheckValue& v : report.values) {
    std::snprintf(buf, sizeof buf, "  %-26s %10.4f  (bound %.4g) %s\n", v.name.c_str(), v.value, v.threshold,
                  v.pass ? "pass" : "FAIL");
    s += buf;
  }
  return s;
}

Backbone fixture(const std::string& name) { return read_backbone_pdb(test::fixture_pdb(name)); }

void for_each_atom(Backbone& b, size_t from, size_t to, const std::function<void(Vec3&)>& f) {
  for (size_t i = from; i < to; ++i) {
    f(b.n[i]), f(b.ca[i]), f(b.c[i]), f(b.o[i]);
    if (i < b.cb.size()) f(b.cb[i]);
  }
}

TEST(ProteinChecks, AllRegisteredInNameOrder) {
  std::vector<std::string> names;
  for (const auto& [name, description] : registry().list()) {
    names.push_back(name);
    EXPECT_FALSE(description.empty());
  }
  std::vector<std::string> expected;
  for (const auto& [name, values] : value_names()) expected.push_back(name);
  EXPECT_EQ(names, expected);
  // A second registration of a taken name returns false.
  EXPECT_FALSE(CheckRegistry<Backbone>::instance().add("clashes", "again",
                                                        [](const Backbone&) { return std::vector<CheckValue>{}; }));
}

TEST(ProteinChecks, RealChainsPassTheirChecks) {
  // Expectation, per fixture chain: every check passes except these measured ones (1CTF_A, a
  // 1.7 A structure refined in the 1980s, has 5.6% of its backbone angles beyond 4 s.d. of Engh
  // & Huber; 2VDF_A has one peptide 68 degrees from planar). The calibration over 200 chains,
  // DISABLED_CalibrateOnRealChains, gives the per-check pass rates behind the thresholds.
  const std::map<std::string, std::string> expected_failure = {{"1CTF_A", "bond_angles"},
                                                               {"2VDF_A", "peptide_planarity"}};
  for (const std::string& name : test::fixture_names()) {
    const CheckReport report = registry().run(fixture(name));
    EXPECT_EQ(report.values.size(), 16u);
    const auto failure = expected_failure.find(name);
    for (const auto& [check, values] : value_names()) {
      const bool should_fail = failure != expected_failure.end() && failure->second == check;
      EXPECT_EQ(passes(report, check), !should_fail) << name << " " << check << "\n" << describe(report);
    }
  }
}

TEST(ProteinChecks, StretchedPeptideFailsCaCaAndBondLengths) {
  Backbone b = fixture("1LQ9_A");
  const size_t k = 40;
  Vec3 dir = {b.ca[k + 1][0] - b.ca[k][0], b.ca[k + 1][1] - b.ca[k][1], b.ca[k + 1][2] - b.ca[k][2]};
  const double len = std::sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
  for_each_atom(b, k + 1, b.size(), [&](Vec3& p) {
    for (int d = 0; d < 3; ++d) p[d] += 0.6 * dir[d] / len;  // CA-CA 3.8 -> 4.4 A
  });
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(passes(r, "ca_ca_distance")) << describe(r);
  EXPECT_NEAR(r.find("ca_ca_max_deviation")->value, 0.6, 0.05);
  EXPECT_FALSE(passes(r, "bond_lengths"));
  EXPECT_TRUE(passes(r, "ca_chirality"));
  EXPECT_TRUE(passes(r, "radius_of_gyration"));
}

TEST(ProteinChecks, MirroredChainFailsChiralityAndRamachandranOnly) {
  Backbone b = fixture("1LQ9_A");
  for_each_atom(b, 0, b.size(), [](Vec3& p) { p[0] = -p[0]; });
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(passes(r, "ca_chirality")) << describe(r);
  EXPECT_NEAR(r.find("chirality_wrong_fraction")->value, 1.0, 1e-12);
  EXPECT_FALSE(passes(r, "ramachandran"));
  EXPECT_LT(r.find("rama_allowed_fraction")->value, 0.5);
  // Distances, angles and |omega| do not change under a mirror.
  for (const char* check : {"bond_lengths", "bond_angles", "ca_ca_distance", "peptide_planarity", "clashes",
                            "radius_of_gyration"})
    EXPECT_TRUE(passes(r, check)) << check << "\n" << describe(r);
}

TEST(ProteinChecks, FlippedCbFailsChiralityOnly) {
  Backbone b = fixture("2XS6_A");
  size_t i = 10;
  while (b.sequence[i] == 'G') ++i;
  // Reflect CB i through the N-CA-C plane: a D residue.
  Vec3 u, v, nrm;
  for (int d = 0; d < 3; ++d) u[d] = b.n[i][d] - b.ca[i][d], v[d] = b.c[i][d] - b.ca[i][d];
  nrm = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
  const double nn = std::sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]);
  double h = 0;
  for (int d = 0; d < 3; ++d) h += (b.cb[i][d] - b.ca[i][d]) * nrm[d] / nn;
  for (int d = 0; d < 3; ++d) b.cb[i][d] -= 2 * h * nrm[d] / nn;
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(passes(r, "ca_chirality")) << describe(r);
  EXPECT_LT(r.find("min_chiral_volume")->value, -1.0);
  size_t with_cb = 0;
  for (size_t k = 0; k < b.size(); ++k) with_cb += has_cb(b, k);
  EXPECT_NEAR(r.find("chirality_wrong_fraction")->value, 1.0 / with_cb, 1e-12);
  for (const auto& [check, values] : value_names()) {
    if (check == "ca_chirality") continue;
    EXPECT_TRUE(passes(r, check)) << check << "\n" << describe(r);
  }
}

TEST(ProteinChecks, ChiralityNeedsCb) {
  Backbone b = fixture("2XS6_A");
  b.cb.clear();
  const CheckReport r = registry().run(b);
  EXPECT_EQ(r.find("chirality_wrong_fraction"), nullptr);  // the check does not apply
  EXPECT_TRUE(r.valid()) << describe(r);
  build_cb(b);
  EXPECT_TRUE(passes(registry().run(b), "ca_chirality"));
}

TEST(ProteinChecks, TwistedPeptideFailsPlanarityOnly) {
  Backbone b = fixture("2XS6_A");
  const size_t k = b.size() - 4;
  // Rotate residues k+1.. by 90 degrees about the C_k -> N_k+1 axis: only omega_k changes.
  Vec3 axis;
  for (int d = 0; d < 3; ++d) axis[d] = b.n[k + 1][d] - b.c[k][d];
  const double len = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  for (double& a : axis) a /= len;
  const Vec3 origin = b.c[k];
  const double cs = std::cos(M_PI / 2), sn = std::sin(M_PI / 2);
  for_each_atom(b, k + 1, b.size(), [&](Vec3& p) {
    Vec3 x;
    for (int d = 0; d < 3; ++d) x[d] = p[d] - origin[d];
    const double along = x[0] * axis[0] + x[1] * axis[1] + x[2] * axis[2];
    const Vec3 cr = {axis[1] * x[2] - axis[2] * x[1], axis[2] * x[0] - axis[0] * x[2], axis[0] * x[1] - axis[1] * x[0]};
    for (int d = 0; d < 3; ++d) p[d] = origin[d] + x[d] * cs + cr[d] * sn + axis[d] * along * (1 - cs);
  });
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(passes(r, "peptide_planarity")) << describe(r);
  EXPECT_GT(r.find("omega_max_deviation")->value, 60.0);
  for (const char* check : {"bond_lengths", "bond_angles", "ca_chirality", "radius_of_gyration"})
    EXPECT_TRUE(passes(r, check)) << check << "\n" << describe(r);
}

TEST(ProteinChecks, InsertedClashFails) {
  Backbone b = fixture("2VDF_A");
  // Residue 60's atoms moved rigidly so that its CA sits 2.5 A from residue 20's CA.
  const size_t i = 20, j = 60;
  Vec3 shift;
  for (int d = 0; d < 3; ++d) shift[d] = b.ca[i][d] + (d == 0 ? 2.5 : 0.0) - b.ca[j][d];
  for_each_atom(b, j, j + 1, [&](Vec3& p) {
    for (int d = 0; d < 3; ++d) p[d] += shift[d];
  });
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(passes(r, "clashes")) << describe(r);
  EXPECT_NEAR(r.find("min_nonadjacent_ca_ca")->value, 2.5, 1e-9);
  EXPECT_GT(r.find("max_backbone_overlap")->value, 0.4);
}

TEST(ProteinChecks, SquashedAndStretchedChainsFailRadiusOfGyration) {
  Backbone squashed = fixture("1VQO_P"), stretched = fixture("1VQO_P");
  for_each_atom(squashed, 0, squashed.size(), [](Vec3& p) { p[0] *= 0.5, p[1] *= 0.5, p[2] *= 0.5; });
  for_each_atom(stretched, 0, stretched.size(), [](Vec3& p) { p[0] *= 3.0; });
  const CheckReport rs = registry().run(squashed), rx = registry().run(stretched);
  EXPECT_FALSE(rs.find("rg_ratio_lower")->pass) << describe(rs);
  EXPECT_FALSE(rx.find("rg_ratio_upper")->pass) << describe(rx);
  EXPECT_TRUE(rx.find("rg_ratio_lower")->pass);
}

TEST(ProteinChecks, TooShortOrInconsistentGivesFailingNaN) {
  Backbone b = fixture("2XS6_A");
  b.n.resize(1), b.ca.resize(1), b.c.resize(1), b.o.resize(1), b.cb.resize(1), b.sequence.resize(1);
  const CheckReport r = registry().run(b);
  EXPECT_FALSE(r.valid());
  for (const char* v : {"ca_ca_max_deviation", "omega_max_deviation", "min_nonadjacent_ca_ca", "rg_ratio_upper",
                        "rama_allowed_fraction"}) {
    ASSERT_NE(r.find(v), nullptr) << v;
    EXPECT_TRUE(std::isnan(r.find(v)->value)) << v;
    EXPECT_FALSE(r.find(v)->pass) << v;
  }
  Backbone bad = fixture("2XS6_A");
  bad.o.pop_back();  // fields disagree: every value NaN, failing
  const CheckReport rb = registry().run(bad);
  for (const CheckValue& v : rb.values) {
    EXPECT_TRUE(std::isnan(v.value)) << v.name;
    EXPECT_FALSE(v.pass) << v.name;
  }
}

// Calibration over many real chains (not run by default):
//   /usr/bin/python3 scripts/protein/make-test-fixtures.py --calibrate 200 /tmp/protein-calib
//   DIT_PROTEIN_CALIB_DIR=/tmp/protein-calib protein_tests --gtest_also_run_disabled_tests
//       --gtest_filter='*Calibrate*'
// prints the pass rate per check and value, value quantiles, and our DSSP's agreement with mkdssp.
TEST(ProteinChecks, DISABLED_CalibrateOnRealChains) {
  const char* dir = std::getenv("DIT_PROTEIN_CALIB_DIR");
  ASSERT_NE(dir, nullptr) << "set DIT_PROTEIN_CALIB_DIR";
  std::vector<std::string> files;
  for (const auto& e : dit::fs::directory_iterator(dir))
    if (e.path().extension() == ".pdb") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::map<std::string, size_t> check_pass;
  std::map<std::string, std::vector<double>> values;
  std::map<std::string, size_t> value_pass;
  size_t all_pass = 0, total3 = 0, same3 = 0, same8 = 0, chains_ge95 = 0;
  double helix = 0, strand = 0;
  for (const std::string& f : files) {
    const Backbone b = read_backbone_pdb(f);
    const CheckReport r = registry().run(b);
    all_pass += r.valid();
    for (const auto& [check, names] : value_names()) check_pass[check] += passes(r, check);
    std::string failed;
    for (const CheckValue& v : r.values) {
      values[v.name].push_back(v.value);
      value_pass[v.name] += v.pass;
      if (!v.pass) failed += " " + v.name + "=" + std::to_string(v.value);
    }
    if (!failed.empty()) std::printf("[ fail     ] %s:%s\n", b.name.c_str(), failed.c_str());
    const std::string mk = f.substr(0, f.size() - 4) + ".mkdssp.txt";
    const std::string ref = test::read_mkdssp(mk);
    const SecondaryStructure ss = assign_secondary_structure(b);
    helix += ss.helix;
    strand += ss.strand;
    if (ref.size() == ss.dssp.size()) {
      size_t s3 = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        const char y = ref[i] == 'P' ? '-' : ref[i];
        s3 += three_state(ss.dssp[i]) == three_state(y);
        same8 += ss.dssp[i] == y;
      }
      same3 += s3;
      total3 += ref.size();
      chains_ge95 += s3 >= 0.95 * ref.size();
    }
  }
  const double n = static_cast<double>(files.size());
  std::printf("[ calib    ] %zu chains; all checks pass: %.3f\n", files.size(), all_pass / n);
  for (const auto& [check, count] : check_pass) std::printf("[ calib    ] check %-20s pass %.3f\n", check.c_str(), count / n);
  for (auto& [name, v] : values) {
    std::sort(v.begin(), v.end());
    auto q = [&](double p) { return v[static_cast<size_t>(p * (v.size() - 1))]; };
    std::printf("[ calib    ] value %-26s pass %.3f  min %.4f q05 %.4f q50 %.4f q95 %.4f max %.4f\n", name.c_str(),
                value_pass[name] / n, v.front(), q(0.05), q(0.5), q(0.95), v.back());
  }
  std::printf("[ calib    ] dssp vs mkdssp: %zu residues, 3-state %.4f, 8-state %.4f, chains >= 95%%: %zu/%zu; "
              "mean helix %.3f strand %.3f\n",
              total3, static_cast<double>(same3) / total3, static_cast<double>(same8) / total3, chains_ge95,
              files.size(), helix / n, strand / n);
}

}  // namespace
}  // namespace dit::protein
