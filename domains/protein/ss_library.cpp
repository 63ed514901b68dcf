// SecondaryStructureLibrary (dit/protein.h): 3-state strings of real training chains
// (data/protein/ss-library.txt, scripts/protein/make-ss-library.py) to condition sampling on.
#include <dit/error.h>
#include <dit/protein.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dit::protein {

namespace {

// "L3H7L2" -> "LLLHHHHHHHLL"; errors name the file and line.
std::string expand(const std::string& rle, const std::string& path, int line) {
  std::string out;
  size_t i = 0;
  while (i < rle.size()) {
    const char c = rle[i++];
    if (c != 'H' && c != 'E' && c != 'L')
      throw Error(fmt::format("{}:{}: secondary-structure letter '{}' (expected H, E or L)", path, line, c));
    size_t j = i;
    while (j < rle.size() && rle[j] >= '0' && rle[j] <= '9') ++j;
    if (j == i || j - i > 4)
      throw Error(fmt::format("{}:{}: run of '{}' without a count of 1..9999 residues", path, line, c));
    out.append(static_cast<size_t>(std::stoi(rle.substr(i, j - i))), c);
    i = j;
  }
  return out;
}

// Helix or strand runs of fewer than 3 residues at the ends of a cut window become loop (a
// window can cut a helix; a 1-residue helix is not one).
void tidy_ends(std::string& s) {
  for (int side = 0; side < 2; ++side) {
    if (s.empty()) return;
    const size_t at = side == 0 ? 0 : s.size() - 1;
    const char c = s[at];
    if (c == 'L') continue;
    size_t run = 0;
    while (run < s.size() && s[side == 0 ? run : s.size() - 1 - run] == c) ++run;
    if (run < 3)
      for (size_t k = 0; k < run; ++k) s[side == 0 ? k : s.size() - 1 - k] = 'L';
  }
}

}  // namespace

std::string SecondaryStructureLibrary::default_path() { return data_dir() + "/protein/ss-library.txt"; }

SecondaryStructureLibrary::SecondaryStructureLibrary(const std::string& path_in) {
  const std::string path = path_in.empty() ? default_path() : path_in;
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read the secondary-structure library", path));
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream fields(text);
    int64_t length = 0;
    std::string rle;
    if (!(fields >> length >> rle))
      throw Error(fmt::format("{}:{}: expected '<length> <run-length string>'", path, line));
    auto s = expand(rle, path, line);
    if (static_cast<int64_t>(s.size()) != length)
      throw Error(fmt::format("{}:{}: the string has {} residues, the length field says {}", path, line, s.size(),
                              length));
    strings_.push_back(std::move(s));
  }
  if (strings_.empty()) throw Error(fmt::format("{}: no secondary-structure strings", path));
  std::stable_sort(strings_.begin(), strings_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
}

std::string SecondaryStructureLibrary::sample(int64_t length, uint64_t seed) const {
  if (length < 1) throw Error(fmt::format("secondary-structure library: length {}", length));
  const int64_t tol = std::max<int64_t>(5, length / 10);
  auto size_of = [](const std::string& s) { return static_cast<int64_t>(s.size()); };
  auto lo = std::lower_bound(strings_.begin(), strings_.end(), length - tol,
                             [&](const std::string& s, int64_t v) { return size_of(s) < v; });
  auto hi = std::upper_bound(strings_.begin(), strings_.end(), length + tol,
                             [&](int64_t v, const std::string& s) { return v < size_of(s); });
  if (lo == hi) {  // none within the tolerance: the strings of the nearest length
    auto near = std::min_element(strings_.begin(), strings_.end(), [&](const std::string& a, const std::string& b) {
      return std::llabs(size_of(a) - length) < std::llabs(size_of(b) - length);
    });
    const int64_t n = size_of(*near);
    lo = std::lower_bound(strings_.begin(), strings_.end(), n,
                          [&](const std::string& s, int64_t v) { return size_of(s) < v; });
    hi = std::upper_bound(strings_.begin(), strings_.end(), n,
                          [&](int64_t v, const std::string& s) { return v < size_of(s); });
  }
  const uint64_t pick = mix_seed(seed, 0), shift = mix_seed(seed, 1);
  std::string s = *(lo + static_cast<std::ptrdiff_t>(pick % static_cast<uint64_t>(hi - lo)));
  const int64_t n = size_of(s);
  if (n > length) {
    s = s.substr(static_cast<size_t>(shift % static_cast<uint64_t>(n - length + 1)), static_cast<size_t>(length));
  } else if (n < length) {
    const auto before = static_cast<size_t>(shift % static_cast<uint64_t>(length - n + 1));
    s = std::string(before, 'L') + s + std::string(static_cast<size_t>(length - n) - before, 'L');
  }
  tidy_ends(s);
  return s;
}

}  // namespace dit::protein
