// Reads a crystal CIF (any symmetry; expanded to the full cell), prints its formula, spglib's
// space group and every check of the crystal domain, and exits 0 when it passes them all, 1
// when not, 2 on bad input.
#include <dit/crystal.h>
#include <dit/error.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STRUCTURE.cif\n", argv[0]);
    return 2;
  }
  try {
    const auto crystal = dit::crystal::read_crystal_cif(argv[1]);
    const auto symmetry = dit::crystal::find_symmetry(crystal, 0.01);
    std::printf("%s: %s, %zu atoms, space group %s (%d)\n", argv[1],
                dit::crystal::formula(dit::crystal::composition_of(crystal)).c_str(), crystal.size(),
                symmetry.international.c_str(), symmetry.number);
    const auto report = dit::crystal::check_crystal(crystal);
    for (const auto& v : report.values)
      std::printf("  %-24s %10.4g (threshold %g) %s\n", v.name.c_str(), v.value, v.threshold, v.pass ? "" : "FAIL");
    std::printf("%s\n", report.valid() ? "valid" : "invalid");
    return report.valid() ? 0 : 1;
  } catch (const dit::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
