#pragma once
// Protein backbones (libdit_protein, find_package(dit COMPONENTS protein) -> dit::protein):
// length-conditioned generation of backbones by the one token DiT, trained by the one trainer
// on real PDB chains, sampled through the sampler registry, each sample checked (geometry,
// clashes, Ramachandran, radius of gyration, secondary structure) and flagged, never dropped.
//
// Representation (docs/protein.md): one token per residue; the network generates the C-alpha
// trace (3 numbers per residue, centred, in units of kCoordScale angstrom), conditioned on the
// chain length and the residue positions; decoding rebuilds N, C, O from the trace with a
// table of real-chain geometry (BBQ-like) and ideal CB, then optionally relaxes the backbone
// with a restrained OpenMM minimisation.
#include <dit/check.h>
#include <dit/domain.h>
#include <dit/train.h>
#include <nlohmann/json.hpp>

#include <array>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace dit::protein {

using Vec3 = std::array<double, 3>;

// A backbone: N, CA, C, O and CB per residue (angstrom).
struct Backbone {
  std::string name;
  std::string sequence;               // one letter per residue; generated chains: all 'A'; 'G' has no CB
  std::vector<Vec3> n, ca, c, o;
  std::vector<Vec3> cb;  // empty, or one per residue with NaN where there is none (glycine)
  size_t size() const { return ca.size(); }
};

// What a user asks for: a chain of `length` residues, optionally with its secondary structure:
// one letter per residue, H helix, E strand, L loop, ? not given; empty: none given. It acts as
// the network's input (models trained with ProteinTrainOptions::secondary_structure) and
// through the trace guidance's restraints (TraceGuidance::secondary_structure), for any model.
struct ProteinRequest {
  ProteinRequest(int64_t length_ = 100, std::string secondary_structure_ = {})  // NOLINT: {L} converts
      : length(length_), secondary_structure(std::move(secondary_structure_)) {}
  int64_t length;
  std::string secondary_structure;
};

// Limits of the token layout: chains of 8..512 residues.
constexpr int64_t kMinLength = 8;
constexpr int64_t kMaxLength = 512;

// PDB files: N, CA, C, O (and CB where present) of the first model's chain `chain`, else its
// first chain with an amino acid; PDB or mmCIF (gzipped or not) by gemmi. Errors (dit::Error)
// name the file, chain and residue.
Backbone read_backbone_pdb(const std::string& path, const std::string& chain = "");
// HEADER (mkdssp needs it), fixed-column ATOM records (N, CA, C, O, CB), TER, END: readable by
// mkdssp, TMalign, PyMOL.
void write_backbone_pdb(const Backbone& backbone, std::ostream& out);
// Written under a temporary name and renamed (nothing half-written).
void write_backbone_pdb(const Backbone& backbone, const std::string& path);

// Generated backbones as one H5MD file (docs/output-format.md: /particles/backbone, N, CA, C,
// O, CB per residue; /observables/{length, checks/...}; /samples/{index, seed, valid}), written
// under a temporary name and renamed. `seeds` [n] int64 (the per-sample seeds).
void write_backbones_h5(const std::string& path, const std::vector<Generated<Backbone>>& samples,
                        const torch::Tensor& seeds, const nlohmann::json& parameters);

// The domain's checks (dit::CheckRegistry<Backbone>; docs/protein.md lists each threshold).
CheckReport check_backbone(const Backbone& backbone);

// Secondary structure by our own Kabsch & Sander (1983) DSSP, agreeing with mkdssp 4 per
// residue (domains/protein/dssp.h): one letter per residue from "HBEGITS-" ('-' loop) and the
// 3-state fractions (helix H+G+I, strand E+B, coil the rest).
struct SecondaryStructure {
  std::string dssp;
  double helix = 0, strand = 0, coil = 0;
};
SecondaryStructure assign_secondary_structure(const Backbone& backbone);

// ---- the model ------------------------------------------------------------------------------

// Model files: a TokenDiT with dit.domain = "protein" and the token layout in the metadata.
// chain_neighbours: TokenDiTConfig::chain_neighbours (each residue also sees its K neighbours on
// either side in the current state); files written before it existed have 0.
// secondary_structure: each residue also sees its 3-state secondary structure when the request
// gives one (ProteinRequest::secondary_structure).
TokenDiT make_protein_model(int64_t hidden, int64_t depth, int64_t heads, bool step_conditioning = false,
                            int64_t chain_neighbours = 0, bool secondary_structure = false);
bool takes_secondary_structure(const TokenDiTImpl& net);
void save_protein_model(const std::string& path, const TokenDiTImpl& net, Metadata extra = {});
TokenDiT load_protein_model(const std::string& path);  // throws dit::Error naming the file
std::string default_protein_model_path();             // data_dir()/models/protein-dit.safetensors

struct DecodeOptions {
  std::string rebuild_table;  // empty: data_dir()/protein/rebuild-table.txt
  bool relax = true;          // restrained OpenMM minimisation of the rebuilt backbone
  // Ramachandran restraint of that minimisation, in kT of the knowledge-based phi/psi energy
  // (the "rama" table of data/protein/ca-potential.txt); 0: none.
  double rama_restraint = 0.0;
  // Outlier polish (with rama_restraint > 0 only): after the relaxation, each residue that the
  // Ramachandran check counts outside its allowed regions gets a phi/psi restraint to the
  // nearest favoured point of the knowledge-based map inside them, each peptide that the
  // planarity check counts as twisted an omega restraint to planarity, and the backbone is
  // relaxed again from where it is, until none is left or this many rounds ran (docs/protein.md).
  int polish_rounds = 4;
};

// Trace guidance (docs/protein.md): for t <= t_max the model's clean estimate x0 = x_t - t v is
// refined by gradient descent on a C-alpha trace energy (kT: ideal CA-CA steps, no
// non-neighbour CA-CA closer than 4 A, and a knowledge-based potential of the local trace
// geometry, virtual angles and dihedrals, -ln p from training chains,
// data/protein/ca-potential.txt), and the velocity is replaced by the one that points at
// x0 + weight (refined - x0). weight 0: the model alone. With a requested secondary structure the
// energy also holds helix and strand residues to their trace geometry (`secondary_structure`).
struct TraceGuidance {
  static constexpr double kDefaultWeight = 0.0;
  double weight = kDefaultWeight;
  double t_max = 0.5;
  // Scale of the restraints that pull residues with a requested secondary structure (H, E) to the
  // C-alpha geometry of helices and strands (domains/protein/guidance.h); 0: the energy ignores
  // the request. Acts only with weight > 0, for any model (ProteinDomain::guide_requests).
  double secondary_structure = 1.0;
  // Scale of the compactness term: a flat-bottomed pull on the C-alpha radius of gyration of a
  // chain more extended than 1.5 x 2.2 N^0.38 A (the radius_of_gyration check fails above 1.6 x);
  // 0: none. Acts only with weight > 0.
  double compactness = 1.0;
  std::string potential;  // empty: data_dir()/protein/ca-potential.txt
};

// The defaults of `dit protein sample` (docs/protein.md, "Pipeline"): the model with the trace
// guidance (weight 1 for t <= 0.8; with secondary-structure strings from the library and the
// compactness term), the Ramachandran restraint of the relaxation and the outlier polish
// (DecodeOptions::polish_rounds). The library types (DecodeOptions{}, TraceGuidance{}) and batch
// jobs default to the model alone; `dit-bench protein --cli-defaults` times this pipeline.
struct SampleDefaults {
  static constexpr const char* kSampler = "euler-maruyama";
  static constexpr int64_t kSteps = 100;
  static constexpr double kNoiseScale = 0.5;
  static constexpr double kTraceGuidance = 1.0;
  static constexpr double kTraceGuidanceTMax = 0.8;
  static constexpr double kRamaRestraint = 2.0;
};

// Secondary-structure strings of real chains to condition on (data/protein/ss-library.txt,
// written from training chains by scripts/protein/make-ss-library.py): `sample(L, seed)` picks
// one of the chains of length L +- max(5, L / 10) by the seed (the nearest length when none)
// and cuts or pads (with loop) its 3-state string to L residues. Errors name the file and line.
class SecondaryStructureLibrary {
 public:
  explicit SecondaryStructureLibrary(const std::string& path = "");  // empty: the bundled file
  std::string sample(int64_t length, uint64_t seed) const;
  size_t size() const { return strings_.size(); }
  static std::string default_path();

 private:
  std::vector<std::string> strings_;  // sorted by length
};

// The protein domain over the one pipeline (dit::generate). Registered as "protein".
// `secondary_structure`: the model takes residue secondary structure (takes_secondary_structure);
// requests that give none are encoded as not given. For a model without it, a request's string
// acts through the trace guidance's restraints only (TraceGuidance::secondary_structure).
class ProteinDomain final : public StructureDomain<ProteinRequest, Backbone> {
 public:
  explicit ProteinDomain(DecodeOptions options = {}, TraceGuidance guidance = {},
                         bool secondary_structure = false);
  ~ProteinDomain() override;
  std::string name() const override { return "protein"; }
  int64_t state_dim() const override { return 3; }
  FlowInputs encode(const std::vector<ProteinRequest>& requests) const override;
  // Centres every chain's C-alpha trace (translation is not part of a backbone) and zeroes
  // the padding, after every sampler step.
  void project(torch::Tensor& x, double t, const FlowInputs& inputs) const override;
  // The trace guidance above (the velocity unchanged when its step is 0).
  VelocityFn guide(VelocityFn velocity, const FlowInputs& inputs) const override;
  // The same, with the restraints' secondary structure read from the requests, so that it acts
  // also when the model does not take it as input (guide() reads it from the model's inputs).
  VelocityFn guide_requests(VelocityFn velocity, const FlowInputs& inputs,
                            const std::vector<ProteinRequest>& requests) const override;
  std::vector<Backbone> decode(const torch::Tensor& x0, const FlowInputs& inputs,
                               const std::vector<ProteinRequest>& requests) const override;
  // What decode does to one sampled trace: N, C, O rebuilt from the C-alpha trace `ca`
  // (angstrom, any frame; the result stays in it), ideal CB, then the restrained relaxation
  // unless DecodeOptions::relax is off (`dit protein rebuild`).
  Backbone decode_trace(const std::vector<Vec3>& ca) const;
  CheckReport check(const Backbone& backbone) const override { return check_backbone(backbone); }

 private:
  VelocityFn guide_with(VelocityFn velocity, const FlowInputs& inputs, torch::Tensor ss) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- training -------------------------------------------------------------------------------

// Chains of a prepared HDF5 file (scripts/protein/prepare.py; layout in docs/protein-data.md)
// as training data: C-alpha traces centred and rotated at random, padded to the batch's longest.
struct ProteinTrainOptions {
  std::string data;             // chains.h5
  std::string output;           // model file (EMA weights)
  std::string checkpoint;       // training state
  int64_t min_length = 40, max_length = 160;
  int64_t hidden = 128, depth = 6, heads = 4;
  int64_t chain_neighbours = 4;  // TokenDiTConfig::chain_neighbours
  // Residue secondary structure (the file's DSSP in 3 states) as an input; each training chain
  // goes without it with probability ss_dropout, so the model also samples unconditioned.
  bool secondary_structure = false;
  double ss_dropout = 0.2;
  std::string init;              // warm start: a protein model file (dit::initialize_from)
  int64_t checkpoint_every = 500;
  bool resume = false;
  TrainOptions train;           // steps, batch, lr, seed, objective, ...
};
void train_protein_model(const ProteinTrainOptions& options);

}  // namespace dit::protein
