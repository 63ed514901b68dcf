// The OpenMM refinement of docked poses (domains/docking/refine.h) on a real complex
// (acetazolamide in human carbonic anhydrase II, a development complex): the generated
// united-atom ff14SB table, the crystal pose staying put, a distorted pose repaired, and dock()
// with --refine openmm.
#include <GraphMol/Conformer.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "domains/docking/refine.h"
#include "tests/domains/docking/fixtures.h"

namespace {

using namespace dit::docking;

using dit::docking::test::kFixtures;

const Receptor& receptor() {
  static const Receptor r = read_receptor(kFixtures + "/hca_pocket.pdb");
  return r;
}

std::vector<Vec3> coordinates(const RDKit::ROMol& mol) {
  std::vector<Vec3> out;
  const auto& conf = mol.getConformer();
  for (unsigned i = 0; i < mol.getNumAtoms(); ++i) {
    const auto& p = conf.getAtomPos(i);
    out.push_back({p.x, p.y, p.z});
  }
  return out;
}

double united_sum(const std::string& residue, const std::vector<std::string>& atoms) {
  double sum = 0;
  for (const auto& a : atoms) {
    double q = 0, sigma = 0, eps = 0;
    EXPECT_TRUE(pocket_table_lookup(residue, a, q, sigma, eps)) << residue << " " << a;
    EXPECT_GT(sigma, 0.2) << residue << " " << a;  // nm: heavy atoms only
    sum += q;
  }
  return sum;
}

// The table generated from protein.ff14SB.xml at build time: every heavy atom of the 78
// templates, hydrogens folded in (net charges of the residues kept).
TEST(DockingRefine, PocketTableIsUnitedAtomFf14SB) {
  EXPECT_EQ(pocket_table_size(), 657);
  EXPECT_NEAR(united_sum("ALA", {"N", "CA", "CB", "C", "O"}), 0.0, 1e-4);
  EXPECT_NEAR(united_sum("ASP", {"N", "CA", "CB", "CG", "OD1", "OD2", "C", "O"}), -1.0, 1e-4);
  EXPECT_NEAR(united_sum("LYS", {"N", "CA", "CB", "CG", "CD", "CE", "NZ", "C", "O"}), 1.0, 1e-4);
  EXPECT_NEAR(united_sum("ARG", {"N", "CA", "CB", "CG", "CD", "NE", "CZ", "NH1", "NH2", "C", "O"}), 1.0, 1e-4);
  double q = 0, sigma = 0, eps = 0;
  ASSERT_TRUE(pocket_table_lookup("SER", "OG", q, sigma, eps));
  EXPECT_NEAR(q, -0.6546 + 0.4275, 1e-6);  // the hydroxyl hydrogen folded into OG
  EXPECT_NEAR(sigma, 0.306647, 1e-5);       // protein-OH
  ASSERT_TRUE(pocket_table_lookup("ALA", "CB", q, sigma, eps));
  EXPECT_NEAR(q, -0.1825 + 3 * 0.0603, 1e-6);
  EXPECT_FALSE(pocket_table_lookup("ALA", "HB1", q, sigma, eps));
  EXPECT_FALSE(pocket_table_lookup("XYZ", "CA", q, sigma, eps));
}

// The crystal pose is near a minimum of the field: refinement moves it little, the
// interaction is favourable and the strain small; the pocket is parameterised from the
// templates except the zinc.
TEST(DockingRefine, CrystalPoseStaysAndIsFavourable) {
  auto ligand = read_ligand(kFixtures + "/acetazolamide_hca.sdf");
  const auto box = box_around(*ligand, 4.0);
  const Receptor pocket = box_pocket(receptor(), box, 8.0);
  RefineOptions options;
  options.platform = "Reference";
  PoseRefiner refiner(pocket, *ligand, options, "hca");
  EXPECT_EQ(refiner.fallback_atoms(), 1);  // the zinc (HETATM ZN, charge +2)
  EXPECT_GT(refiner.pocket_atoms(), 100);
  const auto refined = refiner.refine(coordinates(*ligand));
  EXPECT_LT(refined.shift, 0.5);
  EXPECT_LT(refined.interaction, -20.0);  // kcal/mol: a bound, charged sulfonamide at a zinc
  EXPECT_GE(refined.strain, -1e-3);
  EXPECT_LT(refined.strain, 15.0);
  std::cout << "crystal: interaction " << refined.interaction << " kcal/mol, strain "
            << refined.strain << ", shift " << refined.shift << " A\n";
}

// A pose with every atom displaced by up to 0.3 A (bond lengths off by up to ~0.5 A) comes back
// with MMFF geometry: PoseBusters' bond-length and angle checks fail before and pass after,
// and the heavy atoms stay near where they were (the restraint).
TEST(DockingRefine, RepairsADistortedPose) {
  auto ligand = read_ligand(kFixtures + "/acetazolamide_hca.sdf");
  const auto box = box_around(*ligand, 4.0);
  const Receptor pocket = box_pocket(receptor(), box, 8.0);
  auto coords = coordinates(*ligand);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  for (auto& c : coords)
    for (double& v : c) v += u(rng);
  DockedPose distorted;
  distorted.coordinates = coords;
  auto before = run_pose_checks({*pose_molecule(*ligand, distorted, 0), -1, &receptor()});
  PoseRefiner refiner(pocket, *ligand, RefineOptions{}, "hca");
  const auto refined = refiner.refine(coords);
  DockedPose repaired;
  repaired.coordinates = refined.coordinates;
  auto after = run_pose_checks({*pose_molecule(*ligand, repaired, 0), -1, &receptor()});
  EXPECT_FALSE(before.pb_valid());
  EXPECT_TRUE(after.pb_valid());
  for (const auto& v : after.values) EXPECT_TRUE(v.pass) << v.name << " " << v.value;
  EXPECT_LT(refined.shift, 0.6);
  EXPECT_EQ(refiner.platform(), "CPU");
}

TEST(DockingRefine, DockWithRefinementRanksRefinedPoses) {
  auto ligand = read_ligand(kFixtures + "/acetazolamide_hca.sdf");
  const auto box = box_around(*ligand, 4.0);
  DockOptions options;
  options.num_poses = 8;
  options.mc_steps = 5;
  options.top = 3;
  options.refine = "openmm";
  options.refine_weight = 0.1;
  const auto result = dock(receptor(), *ligand, box, options);
  ASSERT_FALSE(result.poses.empty());
  EXPECT_GT(result.refine_seconds, 0.0);
  EXPECT_GT(result.search_seconds, 0.0);
  EXPECT_GT(result.checks_seconds, 0.0);
  EXPECT_LE(result.proposal_seconds + result.search_seconds + result.refine_seconds + result.checks_seconds,
            result.seconds);
  for (size_t i = 0; i < result.poses.size(); ++i) {
    const auto& p = result.poses[i];
    ASSERT_TRUE(std::isfinite(p.mm_interaction));
    EXPECT_NEAR(p.rank_score, p.affinity + 0.1 * (p.mm_interaction + p.mm_strain), 1e-9);
    EXPECT_TRUE(p.checks.pb_valid());
    if (i > 0) {
      EXPECT_GE(p.rank_score, result.poses[i - 1].rank_score);
    }
  }
  options.refine = "amber";
  EXPECT_THROW(dock(receptor(), *ligand, box, options), dit::Error);
}

// A ligand MMFF94 cannot type (boron) is still docked: unrefined, ranked by affinity, with the
// reason recorded.
TEST(DockingRefine, UntypableLigandIsDockedUnrefined) {
  auto reference = read_ligand(kFixtures + "/acetazolamide_hca.sdf");
  const auto box = box_around(*reference, 4.0);
  auto reader = LigandReader::from_smiles("OB(O)c1ccccc1", "phenylboronic acid", 42);
  LigandRecord record;
  ASSERT_TRUE(reader.next(record));
  ASSERT_TRUE(record.mol) << record.error;
  DockOptions options;
  options.num_poses = 4;
  options.mc_steps = 3;
  options.top = 2;
  options.refine = "openmm";
  options.refine_weight = 0.1;
  const auto result = dock(receptor(), *record.mol, box, options);
  ASSERT_FALSE(result.poses.empty());
  EXPECT_NE(result.refine_skipped.find("MMFF94"), std::string::npos) << result.refine_skipped;
  EXPECT_NE(result.refine_skipped.find("hca_pocket.pdb"), std::string::npos) << result.refine_skipped;
  for (const auto& p : result.poses) {
    EXPECT_TRUE(std::isnan(p.mm_interaction));
    EXPECT_EQ(p.rank_score, p.affinity);
  }
}

}  // namespace
