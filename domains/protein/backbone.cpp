#include "domains/protein/backbone.h"

#include <dit/error.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

namespace dit::protein {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kCodes = "ARNDCQEGHILKMFPSTWYV";
constexpr const char* kNames[] = {"ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
                                  "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL"};

void check_size(const char* field, size_t got, size_t want, const std::string& name) {
  if (got != want)
    throw Error("backbone '" + name + "': field '" + field + "' has " + std::to_string(got) +
                " entries, expected " + std::to_string(want) + " (one per residue)");
}

}  // namespace

void validate(const Backbone& b) {
  const size_t n = b.size();
  check_size("n", b.n.size(), n, b.name);
  check_size("c", b.c.size(), n, b.name);
  check_size("o", b.o.size(), n, b.name);
  check_size("sequence", b.sequence.size(), n, b.name);
  if (!b.cb.empty()) check_size("cb", b.cb.size(), n, b.name);
}

bool finite(const Vec3& p) { return std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]); }

bool has_cb(const Backbone& b, size_t i) { return i < b.cb.size() && finite(b.cb[i]); }

void build_cb(Backbone& b) {
  validate(b);
  b.cb.assign(b.size(), Vec3{kNaN, kNaN, kNaN});
  for (size_t i = 0; i < b.size(); ++i) {
    if (b.sequence[i] == 'G') continue;
    Vec3 bv, cv, av;
    for (int k = 0; k < 3; ++k) {
      bv[k] = b.ca[i][k] - b.n[i][k];
      cv[k] = b.c[i][k] - b.ca[i][k];
    }
    av = {bv[1] * cv[2] - bv[2] * cv[1], bv[2] * cv[0] - bv[0] * cv[2], bv[0] * cv[1] - bv[1] * cv[0]};
    for (int k = 0; k < 3; ++k)
      b.cb[i][k] = -0.58273431 * av[k] + 0.56802827 * bv[k] - 0.54067466 * cv[k] + b.ca[i][k];
  }
}

std::string three_letter_code(char one_letter) {
  const char* at = std::strchr(kCodes, std::toupper(static_cast<unsigned char>(one_letter)));
  if (one_letter == '\0' || at == nullptr) return "ALA";
  return kNames[at - kCodes];
}

char one_letter_code(const std::string& residue_name) {
  for (size_t k = 0; k < 20; ++k)
    if (residue_name == kNames[k]) return kCodes[k];
  return 'X';
}

}  // namespace dit::protein
