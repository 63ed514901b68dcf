#pragma once
// Internal to libdit_protein: the C-alpha trace potential that guides backbone sampling
// (ProteinDomain::guide, docs/protein.md "Trace guidance").
//
// E(trace) in units of kT, the sum of
//   bond:  k_bond (|CA(i+1) - CA(i)| - 3.80 A)^2 over consecutive residues;
//   clash: k_clash max(0, 4.0 A - |CA(i) - CA(j)|)^2 over |i - j| >= 2 (CA(i), CA(i+2) sit 4.5-7.3 A
//          apart in real chains: virtual angles of 72-150 deg);
//   local: the knowledge-based tables of data/protein/ca-potential.txt (written from training
//          chains by scripts/protein/make-ca-potential.py), E = -ln p:
//          theta_tau(theta(i), tau(i)) and tau_tau(tau(i-1), tau(i)), with theta(i) the virtual
//          angle CA(i-1..i+1) and tau(i) the virtual dihedral CA(i-1..i+2), looked up with
//          bilinear interpolation between bin centres (theta clamps, tau wraps);
//   compactness: k_rg N max(0, Rg - kRgGuideUpper Rg0(N))^2, a flat-bottomed pull on the C-alpha
//          radius of gyration Rg of a chain that is more extended than compact real chains, with
//          Rg0(N) = 2.2 N^0.38 A the length law of the radius_of_gyration check (Skolnick et al.
//          1997); it is zero for every chain at or below 1.5 Rg0 (training chains of 50-150
//          residues: median 1.09 Rg0, 8% above 1.5, 6% above 1.6, where the check fails), so it
//          acts on the most extended chains only.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace dit::protein {

struct CaPotential {
  struct Table {
    std::string name;
    double lo0 = 0, lo1 = 0, width = 0;  // degrees; bin k's centre is lo + (k + 0.5) width
    int64_t n0 = 0, n1 = 0;
    bool wrap0 = false, wrap1 = false;   // false: clamp
    torch::Tensor energy;                // [n0 * n1] float64, row-major
  };
  Table theta_tau, tau_tau;
  Table rama;  // phi, psi of the full backbone: the Ramachandran restraint of the relaxation (relax.h)
  std::string source;
};

// Reads data/protein/ca-potential.txt (layout in scripts/protein/make-ca-potential.py). Throws
// dit::Error naming the file, the line and the field on any malformed or missing part.
CaPotential load_ca_potential(const std::string& path);

struct TraceEnergyWeights {
  double bond = 25.0;    // kT / A^2 (0.2 A off: 1 kT)
  double clash = 10.0;   // kT / A^2
  double local = 1.0;    // scales both tables
  double secondary_structure = 1.0;  // scales the restraints of a requested secondary structure
  double compactness = 0.0;  // k_rg, kT / A^2 per residue (0: none; the guidance's default: kDefaultCompactness)
};

// The compactness term's band: no energy while Rg <= kRgGuideUpper * 2.2 N^0.38 A.
constexpr double kRgGuideUpper = 1.5;
// k_rg of the sampling guidance (TraceGuidance::compactness = 1 scales to this): a chain 1 A
// beyond the band costs 4 N kT and a residue at distance Rg from the centre feels 8 kT/A per A
// beyond (0.03 A per refinement step and A beyond at the refinement's rate).
constexpr double kDefaultCompactness = 4.0;

// Restraints of a requested secondary structure (ss [B, N, 3], one-hot H, E, L per residue, all
// zero where not given), on the C-alpha trace's virtual angle theta(i) of an H or E residue and
// virtual dihedral tau(i) = CA(i-1..i+2) where residues i and i+1 are both H or both E:
//   E = (theta - theta0)^2 / (2 sigma^2) + kappa (1 - cos(tau - tau0))
// helix theta0 91 deg, sigma 8, tau0 50 deg, kappa 8; strand theta0 120, sigma 12, tau0 -170,
// kappa 4 (the C-alpha geometry of alpha helices and beta strands, as in C-alpha models since
// Levitt 1976; the handedness is in tau: a left-handed helix, tau -50, costs 9.4 kT per dihedral).
struct SecondaryStructureGeometry {
  double theta0, sigma, tau0, kappa;
};
constexpr SecondaryStructureGeometry kHelixGeometry{91.0, 8.0, 50.0, 8.0};
constexpr SecondaryStructureGeometry kStrandGeometry{120.0, 12.0, -170.0, 4.0};

// Per-chain energies [B] (kT) of C-alpha traces ca [B, N, 3] (angstrom, float64) whose first
// lengths[b] residues are real (the rest padding, ignored); `ss` (optional) as above.
// Differentiable in ca.
torch::Tensor trace_energy(const torch::Tensor& ca, const std::vector<int64_t>& lengths,
                           const CaPotential& potential, const TraceEnergyWeights& weights = {},
                           const torch::Tensor& ss = {});

// One chain, every residue real: the energy (kT) of trace_energy for ca [n, 3] and, when
// `gradient` is given, its gradient [n, 3] (float64), computed directly (closed-form derivatives
// of the bonds, clashes, radius of gyration, virtual angles and dihedrals, and of the bilinear
// table lookups; no autograd): what refine_trace descends on. `ss` [n, 3] as trace_energy's
// (optional). Equal to trace_energy and its autograd gradient to rounding (test
// CaPotential.DirectGradientMatchesAutograd).
double chain_trace_energy(const torch::Tensor& ca, const CaPotential& potential, const TraceEnergyWeights& weights = {},
                          const torch::Tensor& ss = {}, torch::Tensor* gradient = nullptr);

// Gradient descent on trace_energy: `iterations` steps of rate x gradient (A^2 / kT), each
// residue moving at most max_move A per step. Stable for the default weights: the stiffest
// mode, alternating CA-CA stretches along the chain, has curvature 8 k_bond = 200 kT/A^2,
// below 2 / rate = 500. Returns the refined ca [B, N, 3] (padding kept). Each chain descends on
// chain_trace_energy's direct gradient.
struct TraceRefinement {
  int64_t iterations = 50;
  double rate = 0.004;
  double max_move = 0.3;
  TraceEnergyWeights weights;
};
torch::Tensor refine_trace(const torch::Tensor& ca, const std::vector<int64_t>& lengths,
                           const CaPotential& potential, const TraceRefinement& options = {},
                           const torch::Tensor& ss = {});

// The local features of chains ca [..., N, 3]: theta [..., N - 2] (at residues 1..N-2) and tau
// [..., N - 3] (CA(i-1..i+2) for i = 1..N-3), in degrees.
torch::Tensor trace_theta(const torch::Tensor& ca);
torch::Tensor trace_tau(const torch::Tensor& ca);

}  // namespace dit::protein
