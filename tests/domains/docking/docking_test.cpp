// The docking engine on a real complex (acetazolamide in human carbonic anhydrase II, a
// development complex: tests/fixtures/docking/README.md): pose geometry, the score's gradients
// against finite differences, the grid against the exact score, fitting poses to coordinates,
// redocking from an ETKDG conformer, the writers, and `dit dock` on good and bad input.
#include <GraphMol/FileParsers/FileParsers.h>
#include <GraphMol/FileParsers/MolSupplier.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/MolAlign/AlignMolecules.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <cmath>
#include <dit/fs.h>
#include <fstream>
#include <random>

#include "domains/docking/proposal_model.h"
#include "domains/docking/search.h"
#include "tests/apps/run_cli.h"
#include "tests/domains/docking/fixtures.h"
#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using namespace dit::docking;

using dit::docking::test::kCrystal;
using dit::docking::test::kFixtures;
using dit::docking::test::kPocket;
const std::string kAcetazolamide = "CC(=O)Nc1nnc(S(=O)(=O)[NH-])s1";

using dit::docking::test::pocket;
std::unique_ptr<RDKit::RWMol> crystal() { return read_ligand(kCrystal); }

double distance(const Vec3& a, const Vec3& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// Symmetry-corrected heavy-atom RMSD without superposition: RDKit's CalcRMS, as `dit check
// --reference` and scripts/docking/rmsd.py compute it.
double symmetric_rmsd(const RDKit::ROMol& crystal_mol, const RDKit::ROMol& pose_mol) {
  std::unique_ptr<RDKit::ROMol> reference(RDKit::MolOps::removeHs(crystal_mol));
  std::unique_ptr<RDKit::ROMol> pose(RDKit::MolOps::removeHs(pose_mol));
  return RDKit::MolAlign::CalcRMS(*pose, *reference);
}

TEST(DockingReceptor, TypesAndZinc) {
  const auto& r = pocket();
  ASSERT_GT(r.heavy_atoms().size(), 300u);
  int zinc = 0, donors = 0, hydrophobic = 0;
  for (const auto& a : r.atoms) {
    zinc += a.type == XsType::Met_D;
    donors += xs_is_donor(a.type) && a.atomic_number == 7;
    hydrophobic += a.type == XsType::C_H;
  }
  EXPECT_EQ(zinc, 1);
  EXPECT_GT(donors, 40);  // backbone N-H
  EXPECT_GT(hydrophobic, 50);
}

TEST(DockingTopology, AcetazolamideTorsionsKeepBondLengths) {
  auto mol = crystal();
  const auto topo = build_topology(*mol);
  // Rotatable: N-C(ring) and S-C(ring); the amide and terminal groups are not.
  EXPECT_EQ(topo.num_rotatable(), 2);
  EXPECT_EQ(topo.heavy.size(), 13u);
  const auto same = topo.coordinates(topo.identity_pose());
  for (int i = 0; i < topo.num_atoms; ++i) EXPECT_LT(distance(same[i], topo.reference[i]), 1e-9);
  std::mt19937_64 rng(7);
  const auto x = topo.coordinates(random_pose(topo, Box{{0, 0, 0}, {20, 20, 20}}, rng));
  for (const auto* b : mol->bonds()) {
    const int i = b->getBeginAtomIdx(), j = b->getEndAtomIdx();
    EXPECT_NEAR(distance(x[i], x[j]), distance(topo.reference[i], topo.reference[j]), 1e-9);
  }
}

TEST(DockingScore, PoseGradientMatchesFiniteDifferences) {
  auto mol = crystal();
  const auto topo = build_topology(*mol);
  const auto box = box_around(*mol, 4.0);
  const ReceptorGrid grid(pocket(), box, topo.heavy_type);
  std::mt19937_64 rng(3);
  Pose pose = topo.identity_pose();
  pose.position[0] += 0.3;
  pose.torsions = {0.4, -0.7};
  PoseGradient g;
  const double e0 = pose_energy(topo, grid, pose, &g).total();
  ASSERT_TRUE(std::isfinite(e0));
  const double h = 1e-5;
  for (size_t k = 0; k < g.size(); ++k) {
    PoseGradient dir;
    dir.torsions.assign(topo.torsions.size(), 0.0);
    if (k < 3) dir.position[k] = 1;
    else if (k < 6) dir.orientation[k - 3] = 1;
    else dir.torsions[k - 6] = 1;
    const double plus = pose_energy(topo, grid, advance(pose, dir, h), nullptr).total();
    const double minus = pose_energy(topo, grid, advance(pose, dir, -h), nullptr).total();
    const double numeric = (plus - minus) / (2 * h);
    EXPECT_NEAR(g.dot(dir), numeric, 1e-3 * (1 + std::abs(numeric))) << "component " << k;
  }
}

TEST(DockingScore, PairTableFollowsPairEnergy) {
  // The tabulated pair term (grid maps, the search's intramolecular term) against the exact
  // one, for every pair of types (donor-acceptor, hydrophobic, metal pairs among them), over
  // the whole range to the cutoff.
  std::vector<XsType> types;
  for (int t = 0; t < static_cast<int>(XsType::Count); ++t) types.push_back(static_cast<XsType>(t));
  double worst = 0, sum = 0;
  int n = 0;
  for (XsType a : types)
    for (XsType b : types)
      for (double r = 0.5; r < kScoreCutoff; r += 0.0123) {
        double d_exact = 0, d_table = 0;
        const double exact = pair_energy(a, b, r, &d_exact), table = tabulated_pair_energy(a, b, r, &d_table);
        worst = std::max(worst, std::abs(table - exact));
        sum += std::abs(table - exact), ++n;
        // Slopes agree except within a table step of the H-bond and hydrophobic kinks.
        const double d = r - xs_vdw_radius(a) - xs_vdw_radius(b);
        bool near_kink = false;
        for (double kink : {-0.7, 0.0, 0.5, 1.5}) near_kink |= std::abs(d - kink) < 2 * kPairStep;
        if (!near_kink) {
          EXPECT_NEAR(d_table, d_exact, 0.05 + 1e-3 * std::abs(d_exact)) << xs_name(a) << "-" << xs_name(b) << " r " << r;
        }
      }
  EXPECT_LT(worst, 5e-3) << "worst |table - pair_energy| (kcal/mol)";
  EXPECT_LT(sum / n, 1e-4) << "mean |table - pair_energy| (kcal/mol)";
  double slope = 0;
  EXPECT_EQ(tabulated_pair_energy(XsType::C_H, XsType::O_A, kScoreCutoff, &slope), 0.0);
  EXPECT_EQ(slope, 0.0);
}

TEST(DockingScore, GridAgreesWithExactScoreAndCrystalPoseIsFavourable) {
  auto mol = crystal();
  const auto topo = build_topology(*mol);
  const auto box = box_around(*mol, 4.0);
  const ReceptorGrid grid(pocket(), box, topo.heavy_type);
  const auto pose = topo.identity_pose();
  const auto exact = score_pose(topo, pocket(), topo.coordinates(pose));
  const auto gridded = pose_energy(topo, grid, pose, nullptr);
  // Trilinear interpolation at 0.375 A is coarse where the repulsion is steep (the crystal pose
  // has the sulfonamide N 2.0 A from the zinc): agreement to 15%.
  EXPECT_NEAR(gridded.inter, exact.inter, 0.15 * std::abs(exact.inter) + 0.2)
      << "grid " << gridded.inter << " exact " << exact.inter;
  // The crystal pose is favourable and hydrogen-bonded (zinc and Thr199), and L-BFGS from it
  // finds a nearby minimum scoring below -4.5 kcal/mol.
  EXPECT_LT(exact.affinity, -1.0);
  EXPECT_GT(exact.inter_terms.hbond, 2.0);
  DockOptions local;
  local.mode = "local-only";
  local.top = 1;
  local.run_checks = false;
  const auto optimised = dock(pocket(), *mol, box, local);
  EXPECT_LT(optimised.poses.at(0).affinity, -4.5);
}

TEST(DockingFit, RecoversARandomPoseFromItsCoordinates) {
  auto mol = crystal();
  const auto topo = build_topology(*mol);
  std::mt19937_64 rng(11);
  const auto truth = random_pose(topo, box_around(*mol, 4.0), rng);
  const auto x = topo.coordinates(truth);
  std::vector<Vec3> target;
  for (int i : topo.heavy) target.push_back(x[i]);
  const auto fitted = topo.coordinates(fit_pose(topo, target));
  EXPECT_LT(heavy_rmsd(topo, fitted, x), 0.05);
}

// The search's job is to find the score's minimum: from an ETKDG conformer and random starts it
// must reach a score at least as good as the crystal pose after local optimisation (the Vina-like
// score puts acetazolamide's zinc-bound crystal pose at about -5 kcal/mol after L-BFGS and finds
// poses it scores better: a limit of the score, reported in docs/docking.md, not of the search).
TEST(DockingSearch, ReachesTheCrystalPoseLocalMinimumFromAnEtkdgConformer) {
  auto reference = crystal();
  const auto box = box_around(*reference, 4.0);
  DockOptions local;
  local.mode = "local-only";
  local.top = 1;
  const auto crystal_local = dock(pocket(), *reference, box, local);
  ASSERT_EQ(crystal_local.poses.size(), 1u);
  EXPECT_LT(symmetric_rmsd(*reference, *pose_molecule(*reference, crystal_local.poses[0], 1)), 1.5);

  auto reader = LigandReader::from_smiles(kAcetazolamide, "acetazolamide", 42);
  LigandRecord record;
  ASSERT_TRUE(reader.next(record));
  ASSERT_TRUE(record.mol) << record.error;
  DockOptions options;
  options.num_poses = 12;
  options.mc_steps = 10;
  options.top = 3;
  const auto result = dock(pocket(), *record.mol, box, options);
  ASSERT_FALSE(result.poses.empty());
  EXPECT_LE(result.poses.front().affinity, crystal_local.poses[0].affinity + 0.3);
  EXPECT_TRUE(result.poses.front().checks.pb_valid());
  for (size_t i = 1; i < result.poses.size(); ++i) {
    if (result.poses[i].checks.pb_valid() == result.poses[i - 1].checks.pb_valid()) {
      EXPECT_GE(result.poses[i].affinity, result.poses[i - 1].affinity);
    }
  }
}

// The bundled model proposes the starting poses: it loads, samples, and the pipeline ends in
// PB-valid poses; an image model in its place is refused by name.
TEST(DockingModel, BundledModelStartsTheSearchAndImageModelsAreRefused) {
  auto reference = crystal();
  const auto box = box_around(*reference, 4.0);
  DockOptions options;
  options.model = std::string(DIT_SOURCE_DIR) + "/data/models/dock-dit.safetensors";
  options.num_poses = 4;
  options.mc_steps = 2;
  options.sample_steps = 4;
  options.top = 2;
  const auto result = dock(pocket(), *reference, box, options);
  ASSERT_FALSE(result.poses.empty());
  EXPECT_TRUE(result.poses.front().checks.pb_valid());
  EXPECT_LT(result.poses.front().affinity, 0.0);
  options.model = std::string(DIT_SOURCE_DIR) + "/data/models/fmnist-dit.safetensors";
  try {
    dock(pocket(), *reference, box, options);
    FAIL() << "an image model was accepted";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a docking model"), std::string::npos) << e.what();
  }
}

// The learned proposals are worth their cost: drawn through the shared sampling path without
// score guidance (the network alone), the bundled model's 16 starting poses for acetazolamide
// in carbonic anhydrase II lie much closer to the crystal pose than 16 uniformly random starts
// in the same box (heavy-atom RMSD of the fitted poses, no search). hCA II is one of the
// held-out development complexes, but the bundled model was trained with them (model B of
// docs/docking.md), so this shows that the model and the sampling path work, not that it
// generalises (the held-out and reserved tables do). Measured (seed 5): model median 4.12 A,
// best 2.56 A; random median 8.09 A, best 4.76 A (the previous model: 4.45 and 2.68 A).
TEST(DockingModel, LearnedProposalsBeatRandomStarts) {
  auto reference = crystal();
  const auto box = box_around(*reference, 4.0);
  const auto topo = build_topology(*reference);
  const Receptor near = pocket_atoms(pocket(), box, 8.0);
  const ReceptorGrid grid(near, box, topo.heavy_type);
  ProposalSettings settings;
  settings.model_path = std::string(DIT_SOURCE_DIR) + "/data/models/dock-dit.safetensors";
  settings.guidance = 0;
  settings.steps = 20;
  settings.seed = 5;
  const auto learned = model_starts(topo, *reference, near, grid, box, 16, settings);
  std::mt19937_64 rng(5);
  std::vector<double> model_rmsd, random_rmsd;
  for (const auto& pose : learned) model_rmsd.push_back(heavy_rmsd(topo, topo.coordinates(pose), topo.reference));
  for (int i = 0; i < 16; ++i)
    random_rmsd.push_back(heavy_rmsd(topo, topo.coordinates(random_pose(topo, box, rng)), topo.reference));
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const double model_median = median(model_rmsd), random_median = median(random_rmsd);
  const double model_best = *std::min_element(model_rmsd.begin(), model_rmsd.end());
  const double random_best = *std::min_element(random_rmsd.begin(), random_rmsd.end());
  std::cout << "proposals: model median " << model_median << " A, best " << model_best
            << " A; random median " << random_median << " A, best " << random_best << " A\n";
  EXPECT_LT(model_median, 0.65 * random_median);
  EXPECT_LT(model_best, 0.75 * random_best);
}

// The learned model's score of poses (DockOptions::model_weight): the bundled model's
// flow-matching loss, averaged over 16 draws shared by every pose, is lower for the crystal pose
// of acetazolamide than for the same pose moved 3 A or turned over in the pocket (hCA II was in
// the model's training set: this shows the score works, not that it generalises; the
// development-set table of docs/docking.md does that). Identical poses get identical losses,
// a second call the same ones, and dock() ranks by affinity + refine term + W x loss.
TEST(DockingModel, ModelScoreIsReproducibleAndPrefersTheCrystalPose) {
  auto reference = crystal();
  const auto box = box_around(*reference, 4.0);
  const auto topo = build_topology(*reference);
  const Receptor near = pocket_atoms(pocket(), box, 8.0);
  ProposalSettings settings;
  settings.model_path = std::string(DIT_SOURCE_DIR) + "/data/models/dock-dit.safetensors";
  settings.seed = 3;
  const auto& xtal = topo.reference;
  auto moved = xtal, flipped = xtal;
  for (auto& p : moved) p[0] += 3.0;
  for (auto& p : flipped)  // 180 degrees about the z axis through the centroid
    for (int k = 0; k < 2; ++k) p[k] = 2 * topo.centroid[k] - p[k];
  const std::vector<std::vector<Vec3>> poses = {xtal, moved, flipped, xtal};
  const auto losses = model_pose_losses(topo, *reference, near, box, poses, settings, 16);
  ASSERT_EQ(losses.size(), 4u);
  std::cout << "model loss: crystal " << losses[0] << ", moved 3 A " << losses[1] << ", turned over "
            << losses[2] << "\n";
  EXPECT_EQ(losses[0], losses[3]);
  EXPECT_EQ(model_pose_losses(topo, *reference, near, box, poses, settings, 16), losses);
  EXPECT_LT(losses[0], 0.75 * losses[1]);  // measured 0.71 vs 1.17
  EXPECT_LT(losses[0], 0.9 * losses[2]);   // 0.71 vs 0.91

  DockOptions options;
  options.model = settings.model_path;
  options.num_poses = 4, options.mc_steps = 2, options.sample_steps = 4, options.top = 3;
  options.model_weight = 1.0;
  const auto result = dock(pocket(), *reference, box, options);
  ASSERT_FALSE(result.poses.empty());
  for (const auto& pose : result.poses) {
    ASSERT_TRUE(std::isfinite(pose.model_loss));
    double expected = pose.affinity + options.model_weight * pose.model_loss;
    if (std::isfinite(pose.mm_interaction)) expected += options.refine_weight * (pose.mm_interaction + pose.mm_strain);
    EXPECT_NEAR(pose.rank_score, expected, 1e-9);
  }
  options.model_weight = 0;
  EXPECT_TRUE(std::isnan(dock(pocket(), *reference, box, options).poses.front().model_loss));  // not computed
}

TEST(DockingInput, BadInputsNameTheInput) {
  EXPECT_THROW(Box::parse("1,2,3,20,20", "--box"), dit::Error);
  EXPECT_THROW(Box::parse("1,2,3,20,20,x", "--box"), dit::Error);
  EXPECT_THROW(Box::parse("1,2,3,20,20,0", "--box"), dit::Error);
  EXPECT_THROW(Box::parse("nan,2,3,20,20,20", "--box"), dit::Error);
  try {
    read_receptor("/nonexistent/rec.pdb");
    FAIL();
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/rec.pdb"), std::string::npos);
  }
  const auto bad = fs::temp_directory_path() / "dit_bad_receptor.pdb";
  std::ofstream(bad) << "HELLO this is not a PDB\n";
  EXPECT_THROW(read_receptor(bad.string()), dit::Error);
  // A receptor cut off in the middle of an ATOM record: refused, naming the file and line.
  {
    std::ifstream in(kPocket, std::ios::binary);
    std::string text(std::istreambuf_iterator<char>(in), {});
    const auto last_atom = text.rfind("\nATOM  ");
    ASSERT_NE(last_atom, std::string::npos);
    const auto cut = fs::temp_directory_path() / "dit_cut_receptor.pdb";
    std::ofstream(cut.string(), std::ios::binary) << text.substr(0, last_atom + 40);
    const int64_t line = std::count(text.begin(), text.begin() + static_cast<long>(last_atom) + 1, '\n') + 1;
    try {
      read_receptor(cut.string());
      FAIL() << "a truncated receptor was accepted";
    } catch (const dit::Error& e) {
      EXPECT_NE(std::string(e.what()).find(cut.string() + ":" + std::to_string(line) + ": ATOM   record cut short"),
                std::string::npos) << e.what();
    }
    // A coordinate that is not a number.
    std::string garbled = text;
    garbled.replace(last_atom + 1 + 38, 8, "  12.x45");
    std::ofstream(cut.string(), std::ios::binary) << garbled;
    EXPECT_THROW(read_receptor(cut.string()), dit::Error);
    fs::remove(cut);
  }
  auto metal = LigandReader::from_smiles("[Zn+2].OC(=O)CC(=O)O", "zn");
  LigandRecord record;
  ASSERT_TRUE(metal.next(record));
  // The largest fragment is kept; a ligand that is only a metal is refused.
  EXPECT_TRUE(record.mol);
  auto only_metal = LigandReader::from_smiles("[Pt](Cl)(Cl)(N)N", "cisplatin");
  ASSERT_TRUE(only_metal.next(record));
  EXPECT_FALSE(record.mol);
  EXPECT_NE(record.error.find("Pt"), std::string::npos);
  LigandLimits small;
  small.max_heavy_atoms = 8;
  auto big = LigandReader::from_smiles(kAcetazolamide, "acz", 1, small);
  ASSERT_TRUE(big.next(record));
  EXPECT_NE(record.error.find("limit of 8"), std::string::npos) << record.error;
  auto unsanitisable = LigandReader::from_smiles("C1=CC=CC=C1C(C)(C)(C)C", "pentavalent");
  ASSERT_TRUE(unsanitisable.next(record));
  EXPECT_NE(record.error.find("sanitise"), std::string::npos) << record.error;
}

TEST(DockingCli, DocksWritesSdfAndH5AndRefusesBadInput) {
  const auto dir = fs::temp_directory_path() / "dit_dock_cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string sdf = (dir / "poses.sdf").string(), h5 = (dir / "poses.h5").string();
  auto r = dit::test::run("dock --receptor " + kPocket + " --smiles '" + kAcetazolamide +
                          "' --autobox-ligand " + kCrystal + " -n 6 --mc-steps 4 --top 3 --model none -o " +
                          sdf + " --h5 " + h5 + " -t 2");
  ASSERT_EQ(r.code, 0) << r.output;
  RDKit::SDMolSupplier supplier(sdf, true, false);
  int poses = 0;
  while (!supplier.atEnd()) {
    std::unique_ptr<RDKit::ROMol> m(supplier.next());
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->hasProp("dit_affinity"));
    EXPECT_TRUE(m->hasProp("pb_valid"));
    ++poses;
  }
  EXPECT_EQ(poses, 3);
  EXPECT_TRUE(fs::exists(h5));
  EXPECT_TRUE(dit::test::temp_leftovers(sdf).empty());
  // A ligand RDKit cannot read: one line naming it, non-zero exit, nothing written.
  const std::string bad_sdf = (dir / "bad.sdf").string();
  r = dit::test::run("dock --receptor " + kPocket + " --smiles 'C1CC' --autobox-ligand " + kCrystal +
                     " --model none -o " + bad_sdf);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("C1CC"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(bad_sdf));
  EXPECT_TRUE(dit::test::temp_leftovers(bad_sdf).empty());
  // An absurd box.
  r = dit::test::run("dock --receptor " + kPocket + " --smiles CCO --box 0,0,0,1000,20,20 --model none -o " + bad_sdf);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--box"), std::string::npos) << r.output;
  // A box away from the protein: one error before any ligand (here a screen of two), nothing written.
  const std::string two = (dir / "two.smi").string();
  std::ofstream(two) << "CCO ethanol\nCCN ethylamine\n";
  r = dit::test::run("dock --receptor " + kPocket + " --ligand " + two +
                     " --box 500,500,500,20,20,20 --model none -o " + bad_sdf);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no receptor atom within"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hca_pocket.pdb"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ethanol"), std::string::npos) << r.output;  // no ligand was tried
  EXPECT_FALSE(fs::exists(bad_sdf));
  // Screening: a bad record is logged and skipped, the others are docked.
  const std::string screen = (dir / "screen.smi").string();
  std::ofstream(screen) << kAcetazolamide << " acz\nnot_a_smiles broken\nCC(=O)Nc1ccccc1 acetanilide\n";
  r = dit::test::run("dock --receptor " + kPocket + " --ligand " + screen + " --autobox-ligand " + kCrystal +
                     " -n 4 --mc-steps 2 --top 1 --model none -o " + sdf);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("broken"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ligands/min"), std::string::npos) << r.output;
  // Threads: a library is docked one ligand per thread; a file with fewer ligands than threads
  // one ligand at a time with every thread inside it, with the poses of a one-thread run
  // (physics only: the model's GEMMs may round differently with another thread count).
  r = dit::test::run("dock --receptor " + kPocket + " --ligand " + screen + " --autobox-ligand " + kCrystal +
                     " -n 4 --mc-steps 2 --top 1 --model none -t 2 -o " + sdf);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2 ligands at a time, one per thread"), std::string::npos) << r.output;
  const std::string one = (dir / "one.smi").string(), one_t1 = (dir / "one_t1.sdf").string(),
                    one_t2 = (dir / "one_t2.sdf").string();
  std::ofstream(one) << kAcetazolamide << " acz\n";
  for (const auto& [threads, out] : {std::pair{"1", one_t1}, std::pair{"2", one_t2}}) {
    r = dit::test::run("dock --receptor " + kPocket + " --ligand " + one + " --autobox-ligand " + kCrystal +
                       " -n 6 --mc-steps 4 --top 3 --model none -t " + threads + " -o " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(r.output.find("ligands at a time"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("1 at a time"), std::string::npos) << r.output;
  }
  EXPECT_EQ(dit::test::read_bytes(one_t1), dit::test::read_bytes(one_t2));
  fs::remove_all(dir);
}

}  // namespace
