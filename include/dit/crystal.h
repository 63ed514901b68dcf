#pragma once
// Crystals (libdit_crystal, find_package(dit COMPONENTS crystal) -> dit::crystal):
// composition-conditioned crystal structure prediction by the one token DiT with periodic flow
// matching (DiffCSP / FlowMM style), trained by the one trainer, sampled through the sampler
// registry, every sample checked (distances over periodic images, volume and density, charge
// neutrality, spglib symmetry) and flagged, never dropped.
//
// Representation (docs/crystal.md): one token per atom of the cell (its element as token
// features) holding its fractional coordinates on the unit torus, plus two lattice tokens
// holding log lengths and angles of the (Niggli-reduced) cell. Atoms are interchangeable (no
// positional features: the network is permutation-equivariant), the origin is free (uniform
// noise on the torus, random translations in training).
#include <dit/check.h>
#include <dit/domain.h>
#include <dit/train.h>
#include <nlohmann/json.hpp>

#include <array>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace dit::crystal {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // rows: the lattice vectors a, b, c (angstrom)

// A periodic structure: cell parameters and the atoms of one cell in fractional coordinates.
struct Crystal {
  std::string name;
  // a, b, c (angstrom), alpha, beta, gamma (degrees).
  std::array<double, 6> cell{};
  std::vector<int> numbers;  // atomic numbers Z
  std::vector<Vec3> frac;    // fractional coordinates, one per atom
  size_t size() const { return numbers.size(); }
};

// Cell geometry: lattice vectors (a along x, b in the xy plane; the CIF convention), volume
// (NaN when the angles do not form a cell), cartesian coordinates.
Mat3 lattice_matrix(const std::array<double, 6>& cell);
double cell_volume(const std::array<double, 6>& cell);
std::array<double, 6> cell_parameters(const Mat3& lattice);
// The shortest distance between atoms i and j over all periodic images (angstrom); i == j: the
// shortest lattice translation.
double periodic_distance(const Crystal& crystal, size_t i, size_t j);

// Elements (data_dir()/crystal/elements.txt, generated from pymatgen's tables by
// scripts/crystal/make-element-table.py; symbols, masses and covalent radii from gemmi).
struct ElementInfo {
  int z = 0;
  std::string symbol;
  double mass = 0;           // g/mol
  double covalent_radius = 0;  // angstrom
  double electronegativity = 0;  // Pauling; NaN when undefined
  bool metal = false;
  std::vector<int> oxidation_states;  // common ones
};
constexpr int kMaxZ = 94;
const ElementInfo& element(int z);         // throws dit::Error outside 1..kMaxZ
int atomic_number(const std::string& symbol);  // throws dit::Error naming the symbol

// Compositions: "Fe6O8", "NaCl", "SiO2" (element symbols with optional counts). The full cell
// content; `atoms` > 0 multiplies a reduced formula up to that many atoms (an error when it is
// not a multiple). Errors (dit::Error) name the text and what is wrong.
using Composition = std::map<int, int>;  // Z -> count
Composition parse_composition(const std::string& text, int atoms = 0);
// Elements in alphabetical order of symbol, counts of 1 omitted: "Fe6O8", "ClNa".
std::string formula(const Composition& composition);
Composition composition_of(const Crystal& crystal);
// Charge neutrality with common oxidation states: 1 by SMACT's rule (one common state per
// element sums to zero, or every element is a metal: an alloy); 2 only with mixed valence (each
// atom its own common state: Fe3O4 = Fe(2+) Fe(3+)2 O4); 0 neither.
int charge_balance(const Composition& composition);
bool charge_neutral(const Composition& composition);  // charge_balance > 0

// spglib (libsymspg) on the cell: the space group at `symprec` (angstrom), 0 when spglib finds
// none, and the standardised conventional cell.
struct Symmetry {
  int number = 0;
  std::string international;  // "Fm-3m"
  Crystal standardized;
};
Symmetry find_symmetry(const Crystal& crystal, double symprec);

// CIF files: read with gemmi (small-molecule / inorganic CIF, expanded to P1 by its symmetry
// operations; the first block); errors name the file and field. Written in P1 with the
// space group spglib finds noted in the header: readable by pymatgen, gemmi, VESTA, ASE.
Crystal read_crystal_cif(const std::string& path);
void write_crystal_cif(const Crystal& crystal, std::ostream& out);
void write_crystal_cif(const Crystal& crystal, const std::string& path);  // atomic

// Generated crystals as one H5MD file (docs/output-format.md: /particles/crystal with a
// periodic box per sample, /observables/checks/..., /samples/{index, seed, valid}), atomic.
void write_crystals_h5(const std::string& path, const std::vector<Generated<Crystal>>& samples,
                       const torch::Tensor& seeds, const nlohmann::json& parameters);

// The domain's checks (dit::CheckRegistry<Crystal>; docs/crystal.md lists each threshold).
CheckReport check_crystal(const Crystal& crystal);

// ---- the model ------------------------------------------------------------------------------

// What a user asks for: the atoms of one cell, optionally the space group (0: any).
struct CrystalRequest {
  Composition composition;
  int spacegroup = 0;
};
constexpr int kMaxAtoms = 64;  // atoms per cell the token layout takes

// `periodic_pairs` > 0: the atoms see each other through TokenDiTConfig::periodic_pairs (that
// many frequencies; the two lattice tokens global), not through absolute coordinates.
TokenDiT make_crystal_model(int64_t hidden, int64_t depth, int64_t heads, int64_t periodic_pairs = 0);
// Model files: a TokenDiT with dit.domain = "crystal" and the lattice normalisation in the
// metadata (crystal.lattice_mean / lattice_std, 6 numbers each).
struct LatticeScaling {
  std::array<double, 6> mean{}, std{1, 1, 1, 1, 1, 1};  // of (ln a', ln b', ln c', alpha, beta, gamma), a' = a / N^(1/3)
};
void save_crystal_model(const std::string& path, const TokenDiTImpl& net, const LatticeScaling& scaling);
struct CrystalModel {
  TokenDiT net{nullptr};
  LatticeScaling scaling;
};
CrystalModel load_crystal_model(const std::string& path);  // throws dit::Error naming the file
std::string default_crystal_model_path();  // data_dir()/models/crystal-dit.safetensors

// The anti-annealing factor of CrystalDomain::guide at time t: 1 + slope (1 - t), at most
// max(1, t / dt) where dt is the interval of `grid` holding t (no cap when grid is empty).
double anneal_factor(double slope, double t, const std::vector<double>& grid);

// The crystal domain over the one pipeline (dit::generate). Registered as "crystal".
class CrystalDomain final : public StructureDomain<CrystalRequest, Crystal> {
 public:
  // `repulsion` > 0: the physics guidance below, with this step size (0: the model alone).
  // `anneal` > 0: inference anti-annealing of the atoms' velocity (below; 0: off).
  explicit CrystalDomain(LatticeScaling scaling = {}, double repulsion = kDefaultRepulsion,
                         double anneal = kDefaultAnneal);
  static constexpr double kDefaultRepulsion = 0.1;
  static constexpr double kDefaultAnneal = 0.0;
  // The sampling these cells will get: a fixed-step sampler's time grid (1 = t_0 > ... >
  // t_N = 0) caps the anti-annealing so that one step never moves an atom past the model's
  // clean estimate. Without it (or with an adaptive sampler) the factor is not capped.
  void use_sampling(const FlowSampling& sampling);
  std::string name() const override { return "crystal"; }
  int64_t state_dim() const override { return 3; }
  FlowInputs encode(const std::vector<CrystalRequest>& requests) const override;
  // Fractional coordinates start uniform on the torus; the lattice tokens Gaussian.
  torch::Tensor noise(const FlowInputs& inputs, uint64_t seed, int64_t first_index) const override;
  // Wraps the fractional coordinates into [-0.5, 0.5) and zeroes the padding after every step.
  void project(torch::Tensor& x, double t, const FlowInputs& inputs) const override;
  // Physics guidance in the last part of the flow (t < 0.3): the velocity gains the gradient of
  // a soft repulsion, sum over atom pairs of max(0, 0.6 (r_i + r_j) - d_ij)^2 (covalent radii,
  // minimum-image distances in the current cell), so that atoms closer than the checks allow
  // are pushed apart while the model places them.
  // Anti-annealing (FlowMM, Miller et al. 2024, "inference anti-annealing"): the atoms'
  // velocity (not the lattice's) is multiplied by 1 + anneal (1 - t), so the coordinates
  // commit to the model's clean estimate earlier than the lattice; capped at t / dt (dt: the
  // grid interval holding t) so that an Euler step lands at most on the clean estimate.
  VelocityFn guide(VelocityFn velocity, const FlowInputs& inputs) const override;
  std::vector<Crystal> decode(const torch::Tensor& x0, const FlowInputs& inputs,
                              const std::vector<CrystalRequest>& requests) const override;
  CheckReport check(const Crystal& crystal) const override { return check_crystal(crystal); }

 private:
  LatticeScaling scaling_;
  double repulsion_, anneal_;
  std::vector<double> grid_;
};

// ---- training -------------------------------------------------------------------------------

// Crystals of a prepared HDF5 file (scripts/crystal/prepare.py; layout in docs/crystal.md).
struct CrystalTrainOptions {
  std::string data;        // crystals.h5
  std::string output;      // model file (EMA weights)
  std::string checkpoint;  // training state
  int64_t max_atoms = 20;
  int64_t hidden = 128, depth = 6, heads = 4;
  int64_t periodic_pairs = 0;  // make_crystal_model's
  int64_t checkpoint_every = 500;
  bool resume = false;
  TrainOptions train;
};
void train_crystal_model(const CrystalTrainOptions& options);

}  // namespace dit::crystal
