#pragma once
// A protein backbone: per residue the heavy atoms N, CA, C, O and (optionally) CB, in Angstrom.
//
// CB convention: `cb` is either empty (no CB at all: a generated N/CA/C/O chain before
// build_cb) or has one entry per residue; an entry is NaN in all three coordinates where the
// residue has no CB (glycine, sequence 'G', or a CB missing from the input file). Writers skip
// NaN CBs and the chirality check only looks at finite ones.
#include <dit/protein.h>  // Backbone, Vec3

#include <cmath>
#include <cstddef>
#include <string>

namespace dit::protein {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDegPerRad = 180.0 / kPi;

// The radius-of-gyration length law of compact real chains, Rg0(N) = 2.2 N^0.38 A (Skolnick,
// Kolinski & Ortiz 1997, J. Mol. Biol. 265:217): the radius_of_gyration check and the trace
// guidance's compactness term.
constexpr double kRgPrefactor = 2.2, kRgExponent = 0.38;

// Engh & Huber (1991) backbone bond lengths, Angstrom: N-CA, CA-C, C=O, C-N(+1), CA-CB.
constexpr double kNCa = 1.458, kCaC = 1.525, kCO = 1.231, kCN = 1.329, kCaCb = 1.530;

// 3-vector arithmetic on Vec3 (Angstrom).
inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
inline Vec3 scale(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// Throws dit::Error naming the field when n/ca/c/o/sequence (and cb, unless empty) do not all
// have size() entries.
void validate(const Backbone& backbone);

// Whether all three coordinates of p are finite.
bool finite(const Vec3& p);

// Whether residue i has a CB position (cb non-empty and its entry finite).
bool has_cb(const Backbone& backbone, size_t i);

// Places the ideal CB of every non-glycine residue from its N, CA and C (glycine entries are
// NaN), replacing any CB already there. Ideal geometry of L-amino acids (CA-CB 1.53 A):
//   b = CA - N, c = C - CA, a = b x c,
//   CB = -0.58273431 a + 0.56802827 b - 0.54067466 c + CA
// (the constants used by trRosetta / ProteinMPNN, fitted to ideal Engh & Huber residues).
void build_cb(Backbone& backbone);

// One-letter code -> PDB residue name ('X' or an unknown letter -> "ALA"), and back
// (an unknown name -> 'X').
std::string three_letter_code(char one_letter);
char one_letter_code(const std::string& residue_name);

}  // namespace dit::protein
