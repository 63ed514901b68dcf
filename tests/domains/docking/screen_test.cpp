// Screening (many ligands, one target): the shared grid maps, ligands docked in parallel with
// the results in input order and equal to a sequential run, a killed `dit dock` screen that
// resumes to the same files, and a docking batch job sharded in two and merged.
#include <GraphMol/FileParsers/MolSupplier.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <gtest/gtest.h>

#include <dit/fs.h>
#include <fstream>
#include <sstream>

#include "tests/apps/run_cli.h"
#include "tests/domains/docking/fixtures.h"
#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;
using namespace dit::docking;

using dit::docking::test::kCrystal;
using dit::docking::test::kFixtures;
using dit::docking::test::kPocket;

// Four small ligands and one that RDKit cannot parse.
const char* kLibrary =
    "CC(=O)Nc1nnc(S(=O)(=O)[NH-])s1 acetazolamide\n"
    "NS(=O)(=O)c1ccc(cc1)C(=O)O carzenide\n"
    "not_a_smiles broken\n"
    "CC(=O)Nc1ccccc1 acetanilide\n"
    "NS(=O)(=O)c1ccccc1 benzenesulfonamide\n";

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

DockOptions quick_options() {
  DockOptions o;
  o.num_poses = 4;
  o.mc_steps = 3;
  o.top = 2;
  o.model.clear();  // physics only: fast and deterministic
  return o;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DockingTarget, SharesGridMapsAcrossLigandsAndDocksAsTheOneLigandCall) {
  const Receptor receptor = read_receptor(kPocket);
  const Box box = box_around(*read_ligand(kCrystal), 4.0);
  const auto options = quick_options();
  const DockingTarget target(receptor, box, options.pocket_cutoff);
  EXPECT_EQ(target.grid_maps_computed(), 0);
  auto first = LigandReader::from_smiles("CC(=O)Nc1nnc(S(=O)(=O)[NH-])s1", "acz");
  LigandRecord record;
  ASSERT_TRUE(first.next(record));
  ASSERT_TRUE(record.mol) << record.error;
  const auto shared = dock(target, *record.mol, options);
  const int maps = target.grid_maps_computed();
  EXPECT_GE(maps, 4);  // C_H, C_P, N_*, O_*, S_P at least
  const auto alone = dock(receptor, *record.mol, box, options);
  ASSERT_EQ(shared.poses.size(), alone.poses.size());
  for (size_t i = 0; i < shared.poses.size(); ++i) {
    EXPECT_EQ(shared.poses[i].coordinates, alone.poses[i].coordinates) << "pose " << i;
    EXPECT_EQ(shared.poses[i].affinity, alone.poses[i].affinity);
  }
  // A second ligand of the same atom types computes no new map.
  auto again = LigandReader::from_smiles("CC(=O)Nc1nnc(S(N)(=O)=O)s1", "acz-neutral");
  ASSERT_TRUE(again.next(record));
  (void)dock(target, *record.mol, options);
  EXPECT_EQ(target.grid_maps_computed(), maps);
  // A target made with another pocket cutoff is refused by name.
  auto other = options;
  other.pocket_cutoff = 6.0;
  EXPECT_THROW(dock(target, *record.mol, other), dit::Error);
}

TEST(DockingScreen, ParallelWorkersGiveTheSequentialResultsInInputOrder) {
  const auto dir = fresh_dir("dit_dock_stream");
  const std::string library = (dir / "library.smi").string();
  std::ofstream(library) << kLibrary;
  const DockingTarget target(read_receptor(kPocket), box_around(*read_ligand(kCrystal), 4.0));
  auto run = [&](int workers, int64_t first, int stop_after) {
    auto reader = LigandReader::from_file(library);
    std::vector<std::pair<int64_t, std::vector<std::vector<Vec3>>>> got;
    std::vector<std::string> errors;
    const int64_t handed = dock_stream(target, reader, quick_options(), workers, first, [&](ScreenedLigand& item) {
      std::vector<std::vector<Vec3>> poses;
      for (const auto& p : item.result.poses) poses.push_back(p.coordinates);
      got.emplace_back(item.index, poses);
      errors.push_back(item.error);
      return stop_after < 0 || static_cast<int>(got.size()) < stop_after;
    });
    EXPECT_EQ(handed, static_cast<int64_t>(got.size()));
    return std::make_pair(got, errors);
  };
  const auto [sequential, seq_errors] = run(1, 0, -1);
  ASSERT_EQ(sequential.size(), 5u);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(sequential[i].first, i);
  EXPECT_NE(seq_errors[2].find("broken"), std::string::npos) << seq_errors[2];
  EXPECT_TRUE(seq_errors[0].empty()) << seq_errors[0];
  EXPECT_FALSE(sequential[0].second.empty());
  const auto [parallel, par_errors] = run(3, 0, -1);
  ASSERT_EQ(parallel.size(), sequential.size());
  for (size_t i = 0; i < parallel.size(); ++i) {
    EXPECT_EQ(parallel[i].first, sequential[i].first);
    EXPECT_EQ(parallel[i].second, sequential[i].second) << "ligand " << i << ": poses differ";
    EXPECT_EQ(par_errors[i].empty(), seq_errors[i].empty());
  }
  // Starting at record 3 (a resumed screen) gives records 3 and 4, as docked before.
  const auto [tail, tail_errors] = run(2, 3, -1);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].first, 3);
  EXPECT_EQ(tail[1].second, sequential[4].second);
  // `done` returning false: no new ligand starts; those in flight are still handed over, in order.
  const auto [stopped, stopped_errors] = run(2, 0, 1);
  ASSERT_GE(stopped.size(), 1u);  // the first, and those that were being docked beside it
  for (size_t i = 0; i < stopped.size(); ++i) EXPECT_EQ(stopped[i].first, static_cast<int64_t>(i));
  fs::remove_all(dir);
}

TEST(DockingScreen, KilledScreenResumesToTheSameFiles) {
  const auto dir = fresh_dir("dit_dock_resume");
  const std::string library = (dir / "library.smi").string();
  std::ofstream(library) << kLibrary;
  const std::string common = "dock --receptor " + kPocket + " --ligand " + library + " --autobox-ligand " +
                             kCrystal + " -n 4 --mc-steps 3 --top 2 --model none -q";
  const std::string whole = (dir / "whole.sdf").string(), whole_h5 = (dir / "whole.h5").string();
  auto r = dit::test::run(common + " -t 2 -o " + whole + " --h5 " + whole_h5);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("4 ligands docked, 1 skipped"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(whole + ".journal"));
  EXPECT_FALSE(fs::exists(whole + ".partial"));

  // Killed (SIGKILL) once two ligands are journaled; then damage what a kill mid-write leaves:
  // a half-written SDF record and a half journal line.
  const std::string out = (dir / "out.sdf").string(), out_h5 = (dir / "out.h5").string();
  const std::string journal = out + ".journal";
  const std::string kill = "bash -c '" + std::string(DIT_CLI) + " " + common + " -t 1 -o " + out + " --h5 " +
                           out_h5 + " & p=$!; for i in $(seq 600); do n=$(wc -l < " + journal +
                           " 2>/dev/null || echo 0); [ \"$n\" -ge 3 ] && break; sleep 0.05; done; kill -KILL $p; "
                           "wait $p; exit 0'";
  FILE* pipe = popen(kill.c_str(), "r");
  ASSERT_TRUE(pipe);
  pclose(pipe);
  ASSERT_TRUE(fs::exists(journal));
  ASSERT_TRUE(fs::exists(out + ".partial"));
  EXPECT_FALSE(fs::exists(out));
  std::ofstream(out + ".partial", std::ios::app) << "garbage\n  RDKit 3D\n";
  std::ofstream(journal, std::ios::app) << "{\"index\": 9, \"name\": \"half";
  // Other settings: refused, naming the journal and the setting.
  r = dit::test::run(common + " --seed 7 -o " + out + " --h5 " + out_h5);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(journal), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'seed' differs"), std::string::npos) << r.output;
  // The same command resumes and ends with the uninterrupted run's files.
  r = dit::test::run(common + " -t 2 -o " + out + " --h5 " + out_h5);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("by an earlier run"), std::string::npos) << r.output;
  EXPECT_EQ(slurp(out), slurp(whole));
  EXPECT_FALSE(fs::exists(journal));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  EXPECT_FALSE(fs::exists(out_h5 + ".partial"));
  const std::string diff = "h5diff " + out_h5 + " " + whole_h5 + " /observables /observables";
  EXPECT_EQ(std::system((diff + " > /dev/null").c_str()), 0) << diff;
  fs::remove_all(dir);
}

#ifdef DIT_HAVE_JOBS
TEST(DockingBatch, ShardedJobMergesToTheUnshardedRun) {
  const auto dir = fresh_dir("dit_dock_batch");
  const std::string library = (dir / "library.smi").string();
  std::ofstream(library) << kLibrary;
  auto job = [&](const std::string& name, const std::string& output, const std::string& extra) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << "domain = \"docking\"\nmodel = \"none\"\nsamples = 5\nseed = 3\nbatch_size = 2\n"
                        << "output = \"" << output << "\"\n[sampler]\nsteps = 4\n[docking]\nreceptor = \""
                        << kPocket << "\"\nligands = \"" << library << "\"\nautobox_ligand = \"" << kCrystal
                        << "\"\nnum_poses = 4\nmc_steps = 3\n" << extra;
    return path;
  };
  const std::string whole = (dir / "whole.h5").string(), sharded = (dir / "sharded.h5").string();
  auto r = dit::test::run("batch " + job("whole.toml", whole, "") + " -q -t 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("ligand failed"), std::string::npos) << r.output;  // the broken record, flagged
  const std::string shards = job("sharded.toml", sharded, "");
  for (int i = 0; i < 2; ++i) {
    r = dit::test::run("batch " + shards + " --shard " + std::to_string(i) + "/2 -q -t 1");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const std::string merged = (dir / "merged.h5").string();
  r = dit::test::run("merge " + (dir / "sharded.shard-0000-of-0002.h5").string() + " " +
                     (dir / "sharded.shard-0001-of-0002.h5").string() + " -o " + merged);
  ASSERT_EQ(r.code, 0) << r.output;
  // The unsharded file is in the plan's order (batches bucketed by ligand size): in index order too.
  const std::string whole_sorted = (dir / "whole-sorted.h5").string();
  r = dit::test::run("merge " + whole + " -o " + whole_sorted);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const std::string group : {"/observables", "/particles", "/samples"}) {
    const std::string diff = "h5diff " + merged + " " + whole_sorted + " " + group + " " + group;
    EXPECT_EQ(std::system((diff + " > /dev/null").c_str()), 0) << diff;
  }
  // Bad [docking] tables name the file and the key.
  r = dit::test::run("batch " + job("bad.toml", (dir / "bad.h5").string(), "refine = \"amber\"\n") + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("bad.toml: [docking] refine"), std::string::npos) << r.output;
  r = dit::test::run("batch " + job("extra.toml", (dir / "extra.h5").string(), "exhaustiveness = 8\n") + " --dry-run");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("exhaustiveness: unknown key"), std::string::npos) << r.output;
  fs::remove_all(dir);
}
#endif

}  // namespace
