#pragma once
// Docking domain: ligand poses in a protein pocket (libdit_docking, built when RDKit, gemmi and
// OpenMM are present; DIT_HAVE_DOCKING is defined for its users).
//
//   receptor  read_receptor(PDB/mmCIF)    atoms with X-Score types (Vina's atom typing)
//   ligand    LigandReader (SDF stream / SMILES) -> prepare_ligand: sanitised, explicit H,
//             3D conformer (ETKDG when the input has none), stereo kept
//   box       --box cx,cy,cz,sx,sy,sz | box_around(reference ligand)
//   checks    run_pose_checks(pose, receptor): PoseBusters-style values and a PB-valid flag
//
// Units: angstrom, kcal/mol. Every error is a dit::Error naming the input and the field.
#include <GraphMol/RWMol.h>
#include <dit/check.h>

#include <array>
#include <atomic>
#include <functional>
#include <istream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace dit::docking {

using Vec3 = std::array<double, 3>;

// ---- search box -------------------------------------------------------------------------------
struct Box {
  Vec3 center{0, 0, 0};
  Vec3 size{0, 0, 0};  // edge lengths

  // "cx,cy,cz,sx,sy,sz" (the --box flag). `source` names the flag or file in errors.
  static Box parse(const std::string& text, const std::string& source);
  // Finite numbers, every edge in [kMinBoxEdge, kMaxBoxEdge]; throws dit::Error naming `source`.
  void validate(const std::string& source) const;
  bool contains(const Vec3& p, double margin = 0) const;
};
constexpr double kMinBoxEdge = 4.0;
constexpr double kMaxBoxEdge = 126.0;
// The box around a reference ligand's heavy atoms, each edge padded by `padding` on both sides
// (AutoDock Vina's autobox convention: --autobox-ligand with 4 A).
Box box_around(const RDKit::ROMol& ligand, double padding = 4.0);

// ---- receptor ---------------------------------------------------------------------------------
// X-Score atom types, as AutoDock Vina uses them (Trott & Olson 2010, table 1).
enum class XsType : int {
  C_H = 0,  // carbon bonded to carbon/hydrogen only: hydrophobic
  C_P,      // carbon bonded to a heteroatom
  N_P,      // nitrogen, neither donor nor acceptor
  N_D,      // nitrogen donor
  N_A,      // nitrogen acceptor
  N_DA,     // nitrogen donor and acceptor
  O_P,
  O_D,
  O_A,
  O_DA,
  S_P,
  P_P,
  F_H,
  Cl_H,
  Br_H,
  I_H,
  Met_D,    // metal ion: a donor in Vina's H-bond term
  Other,    // boron, silicon, ...: only steric terms
  Count
};
const char* xs_name(XsType type);
double xs_vdw_radius(XsType type);  // Vina's xs_vdw_radii (A)
bool xs_is_hydrophobic(XsType type);
bool xs_is_donor(XsType type);
bool xs_is_acceptor(XsType type);

struct ReceptorAtom {
  Vec3 position{};
  int atomic_number = 0;
  XsType type = XsType::Other;  // heavy atoms; hydrogens are kept with type Other
  std::string name;             // PDB atom name, e.g. "CA"
  std::string residue;          // residue name, e.g. "SER"
  std::string chain;
  int residue_number = 0;
  bool hetero = false;          // HETATM record (metal ions, cofactors)
};

struct Receptor {
  std::string source;                 // file it was read from
  std::vector<ReceptorAtom> atoms;    // waters removed; other HETATM (metals, cofactors) kept
  // Heavy atoms only (what scoring and most checks use).
  std::vector<int> heavy_atoms() const;
};

// Reads a protein from PDB or mmCIF (optionally gzipped) with gemmi. Waters are removed;
// alternate locations keep the first; a ligand to dock must not be in the file (pass
// `drop_residue` = its residue name to remove it, e.g. from a complex). Atom types come from the
// file's element column and bonds perceived by distance (donors: N-H / O-H, known from residue
// templates when hydrogens are missing). Throws dit::Error naming the file on a missing file,
// no atoms, unknown elements or non-finite coordinates.
Receptor read_receptor(const std::string& path, const std::string& drop_residue = "");

// Atoms within `cutoff` of the box (distance to the box, 0 inside it).
Receptor pocket_atoms(const Receptor& receptor, const Box& box, double cutoff);
// pocket_atoms with at least one heavy atom: dit::Error naming the receptor file and the box
// otherwise (the box is not at the protein). `what` names the box's origin ("--box").
Receptor box_pocket(const Receptor& receptor, const Box& box, double cutoff,
                    const std::string& what = "the box");

// ---- ligand -----------------------------------------------------------------------------------
struct LigandLimits {
  int max_heavy_atoms = 128;   // the model's token budget for ligand atoms
  int max_rotatable_bonds = 32;
};

// Sanitises, adds hydrogens (with coordinates when the input has 3D ones), keeps stereo, and
// embeds a 3D conformer by ETKDG (seeded) when the input is SMILES or 2D. Metals, > limits, and
// molecules RDKit cannot sanitise are refused with a dit::Error naming `source`.
std::unique_ptr<RDKit::RWMol> prepare_ligand(const RDKit::ROMol& input, const std::string& source,
                                             uint64_t seed = 42, const LigandLimits& limits = {});

// One ligand from an input stream: a prepared molecule, or the reason it could not be.
struct LigandRecord {
  int64_t index = 0;        // 0-based record number in the input
  std::string name;         // _Name of the record, else "<file>#<index>"
  std::unique_ptr<RDKit::RWMol> mol;  // null when `error` is set
  std::string error;        // why the record was skipped (names the file and record)
  // From next_unprepared(): the parsed, unsanitised record and where it came from ("FILE record
  // N (name)"), for prepare().
  std::unique_ptr<RDKit::ROMol> raw;
  std::string where;
};

// Streams ligands one by one (never the whole file in memory): an SDF (.sdf, .sd, .mol), a
// SMILES file (.smi: "SMILES name" per line), or a single SMILES string.
class LigandReader {
 public:
  static LigandReader from_file(const std::string& path, uint64_t seed = 42,
                                const LigandLimits& limits = {});
  static LigandReader from_smiles(const std::string& smiles, const std::string& name = "ligand",
                                  uint64_t seed = 42, const LigandLimits& limits = {});
  LigandReader(LigandReader&&) noexcept;
  ~LigandReader();
  // False at the end of input. A record that fails preparation comes back with `error` set.
  bool next(LigandRecord& record);
  // The next record parsed but not prepared (`raw`, or `error` when it cannot be parsed):
  // cheap, for skipping records, or for preparing them on other threads.
  bool next_unprepared(LigandRecord& record);
  // Prepares a record from next_unprepared() (sets `mol`, or `error`); thread-safe.
  void prepare(LigandRecord& record) const;

 private:
  struct Impl;
  explicit LigandReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A single ligand (the first record); throws the record's error.
std::unique_ptr<RDKit::RWMol> read_ligand(const std::string& path, uint64_t seed = 42,
                                          const LigandLimits& limits = {});

// ---- pose checks (PoseBusters' "dock" configuration) ------------------------------------------
// Values (domains/docking/checks/*.cpp cite PoseBusters' dock.yml for each bound):
//   sanitization (1 when RDKit sanitises, >= 1), all_atoms_connected (fragments, <= 1),
//   bond_lengths / bond_angles (worst relative deviation from RDKit's distance-geometry bounds,
//   <= 0.25), internal_steric_clash (worst relative overlap below the lower bound, <= 0.3),
//   aromatic_ring_flatness / double_bond_flatness (max distance to the plane in A, <= 0.25),
//   non_aromatic_ring_non_flatness (>= 0.05 A), internal_energy_ratio (UFF, <= 100); with a
//   receptor: min_distance_to_protein_ratio (d / sum of vdW radii, >= 0.75), distance_to_protein
//   (A, <= 5), volume_overlap_protein (<= 0.075), and for HETATM cofactors
//   min_distance_to_cofactors_ratio, volume_overlap_{organic,inorganic}_cofactors.
// NaN: not measurable (fails), except a flatness value with no such group in the pose (passes).
using dit::CheckValue;  // dit/check.h

struct PoseCheckReport : CheckReport {
  bool pb_valid() const { return valid(); }  // every value passes
};

struct PoseCheckInput {
  const RDKit::ROMol& pose;        // the ligand with hydrogens, pose in conformer `conformer_id`
  int conformer_id = -1;
  const Receptor* receptor = nullptr;  // null: the intermolecular checks are skipped
};

// One check registers itself in its own file (domains/docking/checks/NAME.cpp):
//   static const bool registered = dit::docking::register_pose_check("name", "what", fn);
// into dit::CheckRegistry<PoseCheckInput> (dit/check.h), the docking domain's check registry.
using PoseCheckFn = std::function<std::vector<CheckValue>(const PoseCheckInput&)>;
bool register_pose_check(const std::string& name, const std::string& description, PoseCheckFn fn,
                         bool needs_receptor = false);
std::vector<std::string> pose_check_names();

// Runs every registered check (those needing a receptor only when one is given).
PoseCheckReport run_pose_checks(const PoseCheckInput& input);

// ---- docking ----------------------------------------------------------------------------------
struct DockOptions {
  int num_poses = 24;       // starting poses (random, or sampled by the model), each optimised
  int top = 5;              // poses returned
  uint64_t seed = 1234;     // every random draw comes from (seed, start index)
  int mc_steps = 15;        // Monte Carlo refinement steps per start (each followed by L-BFGS)
  double pocket_cutoff = 8.0;  // receptor atoms within this distance of the box are kept
  double min_rmsd = 1.0;    // returned poses differ by at least this heavy-atom RMSD (A)
  bool run_checks = true;   // PoseBusters checks on the returned poses
  // "search" (default); "score-only": the input pose as it is (Vina's --score_only);
  // "local-only": the input pose after L-BFGS (Vina's --local_only).
  std::string mode = "search";
  // Starting poses: "" = uniform random in the box (physics only); otherwise a docking model
  // file whose samples start the search (DiT flow matching, see dit dock --help).
  std::string model;
  std::string sampler = "euler";
  int sample_steps = 10;
  double guidance = 1.0;    // weight of the score-gradient guidance during sampling
  std::string precision;    // the model's linear layers: "" (default: $DIT_LINEAR_PRECISION, else fp32), fp32, bf16
  std::string device = "cpu";  // where the proposal model samples: cpu, cuda, cuda:N, auto (dit/inference.h Placement)
  // Physics refinement of the distinct candidate poses before ranking (docs/docking.md):
  // "openmm" minimises each with the ligand's MMFF94 in the field of the rigid pocket (Amber
  // ff14SB, united atoms); "none" keeps the search's poses.
  std::string refine = "openmm";
  // With refinement, poses rank by affinity + refine_weight * (interaction + strain), all
  // kcal/mol (affinity rescored at the refined pose). Chosen on the development complexes
  // (docs/docking.md): weights above 0.05 ranked worse; 0.02 ranked as 0 did.
  double refine_weight = 0.02;
  // Convergence: a pose's population is the number of starts whose search visited it (a local
  // minimum within population_rmsd of it). Ranking subtracts population_weight x ln(population)
  // (kcal/mol); 0 leaves the ranking alone.
  double population_weight = 0.0;
  double population_rmsd = 2.0;
  // The learned model's score (with a model, when model_score is set or model_weight != 0): each
  // candidate's flow-matching loss under the model (DockedPose::model_loss: the mean over
  // model_score_draws draws of time, noise and a rotation of the complex, the same draws for
  // every candidate); ranking adds model_weight x model_loss. Off by default: on the development
  // complexes it ranked no better than the score, and worse at weights above 1 (docs/docking.md).
  bool model_score = false;
  double model_weight = 0.0;
  int model_score_draws = 8;
};

struct TermValuesReport {
  double gauss1 = 0, gauss2 = 0, repulsion = 0, hydrophobic = 0, hbond = 0;
};

struct DockedPose {
  std::vector<Vec3> coordinates;  // every atom of the prepared ligand, in its atom order
  double affinity = 0;            // Vina-like intermolecular score / (1 + w N_rot), kcal/mol
  double inter = 0, intra = 0;    // kcal/mol
  TermValuesReport terms;         // unweighted intermolecular terms
  PoseCheckReport checks;         // empty when DockOptions::run_checks is off
  int start = 0;                  // which starting pose it came from
  int search_rank = 0;            // its place among the distinct poses by the search's energy (0: best)
  // OpenMM refinement (NaN when DockOptions::refine is "none"), kcal/mol and A: the
  // ligand-pocket interaction energy, the ligand's strain, and how far the heavy atoms moved.
  double mm_interaction = std::numeric_limits<double>::quiet_NaN();
  double mm_strain = std::numeric_limits<double>::quiet_NaN();
  double refine_shift = std::numeric_limits<double>::quiet_NaN();
  int population = 0;             // starts whose search visited this pose (DockOptions::population_rmsd)
  // The docking model's flow-matching loss of the pose (DockOptions::model_weight; NaN: not computed).
  double model_loss = std::numeric_limits<double>::quiet_NaN();
  double rank_score = 0;          // what the ranking sorted by (affinity, or the combined score)
};

struct DockResult {
  std::vector<DockedPose> poses;  // ranked: PB-valid before invalid, then by rank_score
  int num_rotatable = 0;
  double seconds = 0;
  // Of `seconds` (wall): the model's proposals, the Monte Carlo search, the OpenMM refinement
  // and the PoseBusters checks.
  double proposal_seconds = 0, search_seconds = 0, refine_seconds = 0, checks_seconds = 0;
  double model_score_seconds = 0;  // the model's score of the candidates (DockOptions::model_weight)
  int64_t evaluations = 0;        // score + gradient evaluations
  // Why the requested refinement did not run for this ligand (MMFF94 cannot type it, OpenMM
  // failed): the poses are then the search's, ranked by affinity. Empty when it ran.
  std::string refine_skipped;
};

// A receptor and box prepared once for many ligands: the pocket atoms (within `pocket_cutoff`
// of the box) and the score's grid maps, computed per ligand atom type when a ligand first needs
// it and shared by every later ligand (thread-safe: several threads may dock into one target).
// Throws like box_pocket when no receptor atom is near the box.
class DockingTarget {
 public:
  DockingTarget(Receptor receptor, const Box& box, double pocket_cutoff = 8.0,
                const std::string& what = "the box");
  ~DockingTarget();
  DockingTarget(const DockingTarget&) = delete;
  DockingTarget& operator=(const DockingTarget&) = delete;
  const Receptor& receptor() const;
  const Receptor& pocket() const;
  const Box& box() const;
  double pocket_cutoff() const;
  int grid_maps_computed() const;  // atom types whose map exists so far
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Docks a prepared ligand (prepare_ligand / LigandReader) into the receptor within the box.
DockResult dock(const Receptor& receptor, const RDKit::ROMol& ligand, const Box& box,
                const DockOptions& options);
// The same into a prepared target (options.pocket_cutoff must be the target's).
DockResult dock(const DockingTarget& target, const RDKit::ROMol& ligand, const DockOptions& options);

// ---- screening: many ligands, one target ------------------------------------------------------
struct ScreenedLigand {
  int64_t index = 0;                   // record number in the input (0-based)
  std::string name;
  std::unique_ptr<RDKit::RWMol> mol;   // the prepared ligand; null when preparation failed
  DockResult result;                   // valid when `error` is empty
  std::string error;                   // why it failed (naming the file and record)
};

// Docks the ligands `reader` yields, `workers` at a time, each on its own thread and
// single-threaded inside (a ligand's result does not depend on the thread count), and hands each
// to `done` in input order as soon as it and every earlier one are finished, on the calling
// thread (so `done` may write the outputs). Records before `first` are read unprepared and
// skipped (a resumed screen). Once `done` returns false or `*stop` is true, no new ligand
// starts; those being docked are finished and handed to `done`. With workers <= 1 each ligand
// is docked on the calling thread with the process's threads (its starts in parallel). Returns
// the number of ligands handed to `done`.
int64_t dock_stream(const DockingTarget& target, LigandReader& reader, const DockOptions& options,
                    int workers, int64_t first, const std::function<bool(ScreenedLigand&)>& done,
                    const std::atomic<bool>* stop = nullptr);
// What dock_stream runs on: the records `next` yields (unprepared, as from
// LigandReader::next_unprepared; called under a lock, so it need not be thread-safe), prepared
// with `preparer` (its seed and limits). `seed_of(index)`, when given, is each ligand's
// DockOptions::seed (batch jobs: mix_seed(job seed, sample)).
int64_t dock_records(const DockingTarget& target, const LigandReader& preparer,
                     const std::function<bool(LigandRecord&)>& next, const DockOptions& options,
                     int workers, const std::function<bool(ScreenedLigand&)>& done,
                     const std::atomic<bool>* stop = nullptr,
                     const std::function<uint64_t(int64_t)>& seed_of = {});

// A copy of the ligand with the pose's coordinates as its (only) conformer, the score terms and
// check values as properties (written as SD tags).
std::unique_ptr<RDKit::RWMol> pose_molecule(const RDKit::ROMol& ligand, const DockedPose& pose,
                                            int rank);

// Writes ranked poses as they come: an SDF (every pose with its score terms and check values as
// SD tags: dit_rank, dit_affinity, ..., pb_<check>, pb_valid) and optionally an H5MD file
// (docs/output-format.md: particles/ligand, connectivity/ligand_bonds, observables/<term>,
// parameters/). Both are written under temporary names beside them (dit::AtomicOutput, flushed
// after each ligand) and renamed into place by commit(); a writer destroyed without commit()
// removes them.
//
// A resumable writer (a screen) writes "<out>.partial" files and a journal ("<sdf or h5>.journal",
// JSON lines: the parameters, then one line per ligand once its poses are flushed) and holds
// "<sdf or h5>.lock". If the journal of an earlier run is there, the writer continues it: the
// ligands it lists are kept (journal()), whatever was written after its last line is cut off.
// A journal written with other parameters (any key but "version") is an error naming it.
// keep() leaves the partial files and the journal for a later run; commit() renames the outputs
// into place and removes the journal.
class PoseWriter {
 public:
  PoseWriter(const std::string& sdf_path, const std::string& h5_path,
             const std::string& parameters_json, bool resumable = false);
  ~PoseWriter();
  PoseWriter(const PoseWriter&) = delete;
  PoseWriter& operator=(const PoseWriter&) = delete;
  void write(int64_t ligand_index, const std::string& ligand_name, const RDKit::ROMol& ligand,
             const DockResult& result);
  // A ligand that failed (recorded in the journal of a resumable writer; nothing else written).
  void write_failure(int64_t ligand_index, const std::string& ligand_name, const std::string& reason);
  void commit();
  void keep();
  int64_t poses_written() const;
  // One line of the journal: a ligand written (status "ok") or failed (status = the reason).
  struct LigandEntry {
    int64_t index = 0;
    std::string name, status;
    int poses = 0, valid = 0;
    double best_affinity = std::numeric_limits<double>::quiet_NaN(), seconds = 0;
    bool best_valid = false;
  };
  // Every ligand written so far, the resumed ones first (in input order).
  const std::vector<LigandEntry>& journal() const;
  int64_t resumed() const;  // ligands taken over from an earlier run

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- the docking model ------------------------------------------------------------------------
// Flow-matching training of the docking DiT (`dit dock-train`): ligand heavy-atom coordinates
// given the pocket, from complex folders (receptor.pdb, box.txt, crystal.sdf and/or poses.sdf).
struct DockTrainOptions {
  std::vector<std::string> data_dirs;
  std::string output, checkpoint = "dock-train.ckpt";
  bool resume = false;
  int64_t steps = 3000, batch = 32, checkpoint_every = 250, warmup = 100;
  double lr = 3e-4, ema_decay = 0.999, grad_clip = 1.0;
  double center_jitter = 1.0;  // A: the box center moves by N(0, this) per example
  uint64_t seed = 0;
  int64_t hidden = 192, depth = 6, heads = 6, max_pocket_atoms = 256;
  // The trainer's objective (dit/train.h, list_objectives()): "flow-matching", or a few-step
  // one ("shortcut") on a step-conditioned network.
  std::string objective = "flow-matching";
};
void train_docking_model(const DockTrainOptions& options);

}  // namespace dit::docking
