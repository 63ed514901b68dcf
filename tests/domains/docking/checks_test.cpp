// PoseBusters-style pose checks on real molecules with known verdicts: acetazolamide in its
// crystal pose in human carbonic anhydrase II (APBS hca-bind example, cropped to the pocket:
// tests/fixtures/docking/README.md), an EGFR ligand from rdkit-data (egfr.sdf, first record),
// and broken copies of them; and `dit check`'s table, JSON and exit codes.
#include <GraphMol/FileParsers/FileParsers.h>
#include <GraphMol/FileParsers/MolWriters.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RingInfo.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <dit/fs.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/apps/run_cli.h"
#include "tests/domains/docking/fixtures.h"
#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using dit::docking::CheckValue;
using dit::docking::PoseCheckInput;
using dit::docking::PoseCheckReport;
using dit::docking::Receptor;
using dit::docking::run_pose_checks;

using dit::docking::test::kCrystal;
using dit::docking::test::kFixtures;
using dit::docking::test::kPocket;
using dit::docking::test::pocket;
const std::string kEgfr = kFixtures + "/egfr_first.sdf";

// The intramolecular values (those every pose gets, with or without a receptor).
const std::vector<std::string> kIntramolecular = {
    "sanitization",          "all_atoms_connected",   "internal_energy_ratio",
    "aromatic_ring_flatness", "double_bond_flatness", "non_aromatic_ring_non_flatness",
    "bond_lengths",          "bond_angles",           "internal_steric_clash"};
const std::vector<std::string> kIntermolecular = {"min_distance_to_protein_ratio", "distance_to_protein",
                                                  "volume_overlap_protein"};

std::unique_ptr<RDKit::RWMol> read_sdf(const std::string& path) {
  std::unique_ptr<RDKit::RWMol> mol(RDKit::MolFileToMol(path, /*sanitize=*/true, /*removeHs=*/false));
  if (!mol) throw dit::Error(path + ": cannot read");
  return mol;
}

PoseCheckReport check(const RDKit::ROMol& mol, const Receptor* receptor = nullptr) {
  return run_pose_checks(PoseCheckInput{mol, -1, receptor});
}

std::string describe(const PoseCheckReport& r) {
  std::string s;
  for (const auto& v : r.values)
    s += v.name + "=" + std::to_string(v.value) + (v.pass ? "" : " (FAIL)") + "\n";
  return s;
}

const CheckValue& get(const PoseCheckReport& r, const std::string& name) {
  const CheckValue* v = r.find(name);
  if (!v) throw dit::Error("no check value " + name);
  return *v;
}

RDGeom::Point3D centroid(const RDKit::ROMol& mol) {
  RDGeom::Point3D c;
  for (const auto& p : mol.getConformer().getPositions()) c += p;
  return c / static_cast<double>(mol.getNumAtoms());
}

void translate(RDKit::ROMol& mol, const RDGeom::Point3D& by) {
  for (auto& p : mol.getConformer().getPositions()) p += by;
}

// Moves the pose `by` angstrom away from the pocket: along the line from the centre of the
// receptor's heavy atoms through the ligand's centroid.
void move_out_of_pocket(RDKit::ROMol& mol, double by) {
  const Receptor& rec = pocket();
  RDGeom::Point3D protein_centre;
  const auto heavy = rec.heavy_atoms();
  for (int i : heavy)
    protein_centre += RDGeom::Point3D(rec.atoms[i].position[0], rec.atoms[i].position[1], rec.atoms[i].position[2]);
  protein_centre /= static_cast<double>(heavy.size());
  RDGeom::Point3D out = centroid(mol) - protein_centre;
  out.normalize();
  translate(mol, out * by);
}

TEST(ChecksRegistry, EveryCheckRegisteredOnceInNameOrder) {
  const auto names = dit::docking::pose_check_names();
  const std::vector<std::string> expected = {"chemistry", "energy_ratio", "flatness",
                                             "geometry", "protein_distance", "volume_overlap"};
  for (const auto& n : expected)
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  const auto same = [](const PoseCheckInput&) { return std::vector<CheckValue>{}; };
  // The one registry policy (dit/check.h): a taken name or an empty function is refused with
  // false and the first registration kept (registrations run during static initialisation).
  EXPECT_FALSE(dit::docking::register_pose_check("geometry", "again", same));
  EXPECT_FALSE(dit::docking::register_pose_check("no_function", "null", nullptr));
  EXPECT_EQ(dit::docking::pose_check_names(), names);
}

TEST(Checks, CrystalPoseInItsReceptorPassesAll) {
  auto mol = read_sdf(kCrystal);
  // Bond orders and charge as in the crystal (zinc-bound sulfonamide anion).
  std::unique_ptr<RDKit::ROMol> heavy(RDKit::MolOps::removeHs(static_cast<const RDKit::ROMol&>(*mol)));
  std::unique_ptr<RDKit::ROMol> templ(RDKit::SmilesToMol("CC(=O)Nc1nnc(S(=O)(=O)[NH-])s1"));
  EXPECT_EQ(RDKit::MolToSmiles(*heavy), RDKit::MolToSmiles(*templ));

  const auto report = check(*mol, &pocket());
  EXPECT_TRUE(report.pb_valid()) << describe(report);
  for (const auto& n : kIntramolecular) EXPECT_TRUE(get(report, n).pass) << n << "\n" << describe(report);
  for (const auto& n : kIntermolecular) EXPECT_TRUE(get(report, n).pass) << n << "\n" << describe(report);
  // Snug in the pocket: within 3.5 A of the protein, yet no clash and no volume overlap.
  EXPECT_LT(get(report, "distance_to_protein").value, 3.5);
  EXPECT_GT(get(report, "min_distance_to_protein_ratio").value, 0.75);
  EXPECT_LT(get(report, "volume_overlap_protein").value, 0.075);
  // The zinc is an inorganic cofactor: the sulfonamide N binds it at ~2 A, no clash by
  // covalent radii (PoseBusters' choice for ions).
  ASSERT_NE(report.find("min_distance_to_cofactors_ratio"), nullptr) << describe(report);
  EXPECT_TRUE(get(report, "min_distance_to_cofactors_ratio").pass);
  EXPECT_TRUE(get(report, "volume_overlap_inorganic_cofactors").pass);
  // Two flat systems are present (thiadiazole; the amide is not C=C), the energy is near-relaxed.
  EXPECT_LT(get(report, "aromatic_ring_flatness").value, 0.05);
  EXPECT_LT(get(report, "internal_energy_ratio").value, 10);
}

TEST(Checks, PoseInsideTheProteinFailsDistanceAndOverlap) {
  auto mol = read_sdf(kCrystal);
  // Move the ligand onto the most buried protein atom of the pocket.
  const Receptor& rec = pocket();
  const auto heavy = rec.heavy_atoms();
  int best = -1, most = -1;
  for (int i : heavy) {
    if (rec.atoms[i].hetero) continue;
    int n = 0;
    for (int j : heavy) {
      const auto& a = rec.atoms[i].position;
      const auto& b = rec.atoms[j].position;
      n += std::hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]) < 6.0;
    }
    if (n > most) most = n, best = i;
  }
  ASSERT_GE(best, 0);
  const auto& target = rec.atoms[best].position;
  translate(*mol, RDGeom::Point3D(target[0], target[1], target[2]) - centroid(*mol));

  const auto report = check(*mol, &rec);
  EXPECT_FALSE(report.pb_valid());
  EXPECT_FALSE(get(report, "min_distance_to_protein_ratio").pass) << describe(report);
  EXPECT_LT(get(report, "min_distance_to_protein_ratio").value, 0.75);
  EXPECT_FALSE(get(report, "volume_overlap_protein").pass) << describe(report);
  EXPECT_GT(get(report, "volume_overlap_protein").value, 0.075);
  EXPECT_TRUE(get(report, "distance_to_protein").pass);
  // The molecule itself is untouched.
  for (const auto& n : kIntramolecular) EXPECT_TRUE(get(report, n).pass) << n;
}

TEST(Checks, PoseTwentyAngstromAwayFailsDistanceOnly) {
  auto mol = read_sdf(kCrystal);
  move_out_of_pocket(*mol, 20.0);
  const auto report = check(*mol, &pocket());
  EXPECT_FALSE(report.pb_valid());
  EXPECT_FALSE(get(report, "distance_to_protein").pass) << describe(report);
  EXPECT_GT(get(report, "distance_to_protein").value, 5.0);
  EXPECT_TRUE(get(report, "min_distance_to_protein_ratio").pass);
  EXPECT_EQ(get(report, "volume_overlap_protein").value, 0.0);
}

TEST(Checks, StretchedBondFailsBondLengths) {
  auto mol = read_sdf(kCrystal);
  // The acetyl C-C bond (atoms 7 and 8, 1-based; 0-based 6 and 7): move the methyl group
  // (C8 and its three H) out along the bond by half its length.
  auto& conf = mol->getConformer();
  const unsigned c7 = 6, c8 = 7;
  ASSERT_NE(mol->getBondBetweenAtoms(c7, c8), nullptr);
  const RDGeom::Point3D shift = (conf.getAtomPos(c8) - conf.getAtomPos(c7)) * 0.5;
  std::vector<unsigned> methyl = {c8};
  for (const auto* nb : mol->atomNeighbors(mol->getAtomWithIdx(c8)))
    if (nb->getAtomicNum() == 1) methyl.push_back(nb->getIdx());
  ASSERT_EQ(methyl.size(), 4u);
  for (unsigned i : methyl) conf.setAtomPos(i, conf.getAtomPos(i) + shift);

  const auto report = check(*mol);
  EXPECT_FALSE(report.pb_valid());
  EXPECT_FALSE(get(report, "bond_lengths").pass) << describe(report);
  EXPECT_GT(get(report, "bond_lengths").value, 0.25);
  EXPECT_TRUE(get(report, "aromatic_ring_flatness").pass);
}

TEST(Checks, PuckeredAromaticRingFailsFlatness) {
  auto mol = read_sdf(kEgfr);
  // One atom of a benzene-like ring lifted 0.7 A out of the ring plane (its hydrogen too).
  const RDKit::RingInfo* rings = mol->getRingInfo();
  std::vector<int> ring;
  for (const auto& r : rings->atomRings())
    if (r.size() == 6 && std::all_of(r.begin(), r.end(), [&](int i) { return mol->getAtomWithIdx(i)->getIsAromatic(); })) {
      ring = r;
      break;
    }
  ASSERT_EQ(ring.size(), 6u);
  auto& conf = mol->getConformer();
  const RDGeom::Point3D a = conf.getAtomPos(ring[0]), b = conf.getAtomPos(ring[2]), c = conf.getAtomPos(ring[4]);
  RDGeom::Point3D normal = (b - a).crossProduct(c - a);
  normal.normalize();
  const int lifted = ring[1];
  std::vector<int> moved = {lifted};
  for (const auto* nb : mol->atomNeighbors(mol->getAtomWithIdx(lifted)))
    if (nb->getAtomicNum() == 1) moved.push_back(nb->getIdx());
  for (int i : moved) conf.setAtomPos(i, conf.getAtomPos(i) + normal * 0.7);

  const auto report = check(*mol);
  EXPECT_FALSE(report.pb_valid());
  EXPECT_FALSE(get(report, "aromatic_ring_flatness").pass) << describe(report);
  EXPECT_GT(get(report, "aromatic_ring_flatness").value, 0.25);
}

TEST(Checks, EgfrLigandPassesTheIntramolecularChecks) {
  auto mol = read_sdf(kEgfr);
  const auto report = check(*mol);
  // Without a receptor, only the intramolecular values are reported.
  EXPECT_EQ(report.find("distance_to_protein"), nullptr);
  EXPECT_TRUE(report.pb_valid()) << describe(report);
  for (const auto& n : kIntramolecular) {
    ASSERT_NE(report.find(n), nullptr) << n;
    EXPECT_TRUE(get(report, n).pass) << n << "\n" << describe(report);
  }
  EXPECT_GT(get(report, "internal_energy_ratio").value, 0.0);
}

TEST(Checks, UnsanitisableAndDisconnectedMoleculesFailChemistry) {
  // A carbon with five fluorines: RDKit refuses its valence.
  std::unique_ptr<RDKit::RWMol> bad(RDKit::SmilesToMol("FC(F)(F)(F)F", 0, /*sanitize=*/false));
  ASSERT_TRUE(bad);
  auto* conf = new RDKit::Conformer(bad->getNumAtoms());
  const double d = 1.35;
  const RDGeom::Point3D dirs[] = {{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}};
  conf->setAtomPos(1, RDGeom::Point3D(0, 0, 0));
  const int fluorines[] = {0, 2, 3, 4, 5};
  for (int k = 0; k < 5; ++k) conf->setAtomPos(fluorines[k], dirs[k] * d);
  bad->addConformer(conf, true);
  const auto r1 = check(*bad);
  EXPECT_FALSE(get(r1, "sanitization").pass) << describe(r1);
  EXPECT_FALSE(get(r1, "bond_lengths").pass);  // cannot be measured: NaN
  EXPECT_TRUE(std::isnan(get(r1, "bond_lengths").value));
  EXPECT_FALSE(r1.pb_valid());

  // Ethane and water, 4 A apart: two fragments.
  std::unique_ptr<RDKit::RWMol> two(RDKit::SmilesToMol("CC.O"));
  auto* c2 = new RDKit::Conformer(3);
  c2->setAtomPos(0, RDGeom::Point3D(0, 0, 0));
  c2->setAtomPos(1, RDGeom::Point3D(1.53, 0, 0));
  c2->setAtomPos(2, RDGeom::Point3D(0, 4, 0));
  two->addConformer(c2, true);
  const auto r2 = check(*two);
  EXPECT_TRUE(get(r2, "sanitization").pass);
  EXPECT_FALSE(get(r2, "all_atoms_connected").pass);
  EXPECT_EQ(get(r2, "all_atoms_connected").value, 2.0);
}

// ---- dit check ---------------------------------------------------------------------------------

std::string temp_dir() {
  auto dir = fs::temp_directory_path() / ("dit_checks_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir.string();
}

bool have_cli() { return std::string(DIT_CLI).size() > 0 && fs::exists(DIT_CLI); }

// The crystal pose and a copy moved 20 A out of the pocket, in one SDF.
std::string write_two_poses(const std::string& dir) {
  const std::string path = dir + "/two_poses.sdf";
  auto crystal = read_sdf(kCrystal);
  auto far = read_sdf(kCrystal);
  move_out_of_pocket(*far, 20.0);
  far->setProp("_Name", std::string("far_away"));
  RDKit::SDWriter writer(path);
  writer.write(*crystal);
  writer.write(*far);
  writer.close();
  return path;
}

TEST(ChecksCli, CrystalPoseExitsZero) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const auto r = dit::test::run("check " + kCrystal + " --receptor " + kPocket);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 poses, 1 PB-valid"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("volume_overlap_protein"), std::string::npos) << r.output;
}

TEST(ChecksCli, FailingPoseExitsOneWithJsonAndRmsd) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir();
  const std::string poses = write_two_poses(dir);
  const std::string json = dir + "/report.json";
  fs::remove(json);
  const auto r = dit::test::run("check " + poses + " --receptor " + kPocket + " --reference " + kCrystal +
                                " --json " + json);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("2 poses, 1 PB-valid"), std::string::npos) << r.output;
  std::ifstream in(json);
  ASSERT_TRUE(in) << json;
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["n_poses"], 2);
  EXPECT_EQ(doc["n_pb_valid"], 1);
  ASSERT_EQ(doc["poses"].size(), 2u);
  EXPECT_TRUE(doc["poses"][0]["pb_valid"].get<bool>());
  EXPECT_FALSE(doc["poses"][1]["pb_valid"].get<bool>());
  EXPECT_EQ(doc["poses"][1]["name"], "far_away");
  // In place, no alignment: 0 for the crystal pose, exactly the 20 A shift for the other.
  EXPECT_NEAR(doc["poses"][0]["rmsd"].get<double>(), 0.0, 1e-3);
  EXPECT_NEAR(doc["poses"][1]["rmsd"].get<double>(), 20.0, 1e-3);
  bool distance_failed = false;
  for (const auto& c : doc["poses"][1]["checks"])
    if (c["name"] == "distance_to_protein") distance_failed = !c["pass"].get<bool>();
  EXPECT_TRUE(distance_failed);
  EXPECT_TRUE(dit::test::temp_leftovers(json).empty());
}

TEST(ChecksCli, BadInputExitsTwoNamingFileAndRecord) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir();
  // A good record, then one with a pentavalent carbon, then a truncated one.
  std::ifstream crystal(kCrystal);
  const std::string good((std::istreambuf_iterator<char>(crystal)), std::istreambuf_iterator<char>());
  const std::string pentavalent =
      "bad_carbon\n  test\n\n  6  5  0  0  0  0  0  0  0  0999 V2000\n"
      "    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    1.3500    0.0000    0.0000 F   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "   -1.3500    0.0000    0.0000 F   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    0.0000    1.3500    0.0000 F   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    0.0000   -1.3500    0.0000 F   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    0.0000    0.0000    1.3500 F   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "  1  2  1  0\n  1  3  1  0\n  1  4  1  0\n  1  5  1  0\n  1  6  1  0\nM  END\n$$$$\n";
  const std::string path = dir + "/bad.sdf";
  {
    std::ofstream out(path);
    out << good << pentavalent;
  }
  auto r = dit::test::run("check " + path);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(path + " record 2 (bad_carbon)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 poses, 1 PB-valid"), std::string::npos) << r.output;

  const std::string garbage = dir + "/garbage.sdf";
  {
    std::ofstream out(garbage);
    out << "not a molecule\n\n\n  x  y  z\nM  END\n$$$$\n";
  }
  r = dit::test::run("check " + garbage);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(garbage + " record 1"), std::string::npos) << r.output;

  r = dit::test::run("check " + kCrystal + " --receptor " + dir + "/missing.pdb");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(dir + "/missing.pdb"), std::string::npos) << r.output;

  r = dit::test::run("check " + dir + "/missing.sdf");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(dir + "/missing.sdf"), std::string::npos) << r.output;

  r = dit::test::run("check " + dir + "/poses.sdf.gz");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("decompress"), std::string::npos) << r.output;

  r = dit::test::run("check --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("Exit status"), std::string::npos) << r.output;
}

// dit check picks the checks by the file's extension (any case); a type nobody checks is bad
// input that lists the types this build reads, and --help lists them too.
TEST(ChecksCli, FileTypePicksTheChecks) {
  if (!have_cli()) GTEST_SKIP() << "dit CLI not built";
  const std::string dir = temp_dir();
  const std::string upper = dir + "/CRYSTAL.SDF";
  fs::copy_file(kCrystal, upper, fs::copy_options::overwrite_existing);
  auto r = dit::test::run("check " + upper + " --receptor " + kPocket);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 poses, 1 PB-valid"), std::string::npos) << r.output;

  const std::string xyz = dir + "/poses.xyz";
  {
    std::ofstream out(xyz);
    out << "1\nC\nC 0 0 0\n";
  }
  r = dit::test::run("check " + xyz + " --receptor " + kPocket);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(xyz + ": no checks for this file type"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(".sdf, .sd: docking poses"), std::string::npos) << r.output;

  r = dit::test::run("check --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("File types:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(".sdf, .sd: docking poses"), std::string::npos) << r.output;
}

}  // namespace
