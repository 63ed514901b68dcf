// pose_checks RECEPTOR.pdb LIGAND.sdf: PoseBusters-style checks of a ligand pose in its pocket,
// through the installed package (find_package(dit COMPONENTS docking), dit::docking).
// Prints one line per check; exit 0 when the pose is PB-valid, 1 when not, 2 on bad input.
#include <dit/docking.h>
#include <dit/error.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s RECEPTOR.pdb LIGAND.sdf\n", argv[0]);
    return 2;
  }
  try {
    const dit::docking::Receptor receptor = dit::docking::read_receptor(argv[1]);
    const auto ligand = dit::docking::read_ligand(argv[2]);
    const dit::docking::PoseCheckReport report =
        dit::docking::run_pose_checks({*ligand, -1, &receptor});
    for (const auto& v : report.values)
      std::printf("%-36s %10.4f  (bound %g)  %s\n", v.name.c_str(), v.value, v.threshold,
                  v.pass ? "pass" : "FAIL");
    std::printf("%s: %zu receptor atoms, %zu checks, PB-valid: %s\n", argv[2],
                receptor.atoms.size(), report.values.size(), report.pb_valid() ? "yes" : "no");
    return report.pb_valid() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pose_checks: %s\n", e.what());
    return 2;
  }
}
