// Reads a backbone (PDB or mmCIF), prints its secondary structure and every check of the
// protein domain, and exits 0 when it passes them all, 1 when not, 2 on bad input.
#include <dit/error.h>
#include <dit/protein.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s BACKBONE.pdb\n", argv[0]);
    return 2;
  }
  try {
    const auto backbone = dit::protein::read_backbone_pdb(argv[1]);
    const auto ss = dit::protein::assign_secondary_structure(backbone);
    std::printf("%s: %zu residues, helix %.2f strand %.2f coil %.2f\n", argv[1], backbone.size(), ss.helix,
                ss.strand, ss.coil);
    const auto report = dit::protein::check_backbone(backbone);
    for (const auto& v : report.values)
      std::printf("  %-28s %10.4g (threshold %g) %s\n", v.name.c_str(), v.value, v.threshold, v.pass ? "" : "FAIL");
    std::printf("%s\n", report.valid() ? "valid" : "invalid");
    return report.valid() ? 0 : 1;
  } catch (const dit::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
