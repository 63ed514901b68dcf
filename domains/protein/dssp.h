#pragma once
// Secondary structure of a backbone: our own implementation of Kabsch & Sander (1983),
// "Dictionary of protein secondary structure", Biopolymers 22:2577, following the choices of
// mkdssp 4 (DSSP 4.x, Hekkelman et al.) so that the two agree per residue:
//   - amide H: N + unit vector (C_{i-1} -> O_{i-1} reversed), N-H 1.0 A; none for proline and
//     none after a chain break (then H = N, which gives energy 0);
//   - H-bond energy E = 0.084 * 332 * (1/rON + 1/rCH - 1/rOH - 1/rCN) kcal/mol (donor N-H,
//     acceptor C=O), clamped at -9.9 (and -9.9 when any distance < 0.5 A), computed for pairs
//     with CA-CA < 9 A; each residue keeps its two best bonds as donor and as acceptor, and a
//     bond counts when E < -0.5 kcal/mol;
//   - n-turns (n = 3, 4, 5); minimal helices from two consecutive n-turns: H (n=4), then G
//     (n=3, only on residues still loop) and I (n=5, pi helices take precedence over H as in
//     DSSP 4's default); parallel / antiparallel bridges, ladders joined across bulges
//     (gaps < 6 and < 3 residues) -> E (ladder of >= 2 bridges) or B (isolated bridge), set
//     before helices (H overwrites E, as in DSSP); T (residue inside an n-turn), S (bend: CA
//     angle kappa(i-2, i, i+2) > 70 degrees). The polyproline 'P' of DSSP 4 is not assigned
//     (coil in 3 states). Chain break: C_i - N_{i+1} > 2.5 A.
// Output: one letter per residue from "HBEGITS-" ('-' = loop).
// Three states (the common mapping): helix = H, G, I; strand = E, B; coil = everything else.
#include <string>

#include "domains/protein/backbone.h"

namespace dit::protein {

// SecondaryStructure and assign_secondary_structure are declared in dit/protein.h.
SecondaryStructure assign_secondary_structure(const Backbone& backbone);

// The Kabsch-Sander electrostatic energy (kcal/mol) of the H-bond N-H (donor) ... O=C (acceptor),
// unclamped.
double hbond_energy(const Vec3& donor_n, const Vec3& donor_h, const Vec3& acceptor_c, const Vec3& acceptor_o);

// 'H','G','I' -> 'H'; 'E','B' -> 'E'; anything else -> '-'.
char three_state(char dssp_letter);

}  // namespace dit::protein
