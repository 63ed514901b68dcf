// `dit check STRUCTURE.cif`: the file checker of crystal CIF files (apps/dit/check.h): the
// crystal domain's checks (docs/crystal.md) on the cell, expanded to P1 by its symmetry.
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/files.h>
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "check.h"

namespace dit::cli {
namespace {

class CrystalChecker final : public FileChecker {
 public:
  std::string description() const override {
    return "crystal (small-molecule / inorganic CIF): distances over periodic images, volume and density, "
           "charge neutrality, spglib space group";
  }
  std::vector<std::string> extensions() const override { return {".cif"}; }
  // A crystal CIF has fractional coordinates (_atom_site_fract_x); an mmCIF has _atom_site.Cartn_x.
  int claims(const std::string& file) const override {
    std::ifstream in(file);
    std::string line;
    for (int n = 0; n < 100000 && std::getline(in, line); ++n)
      if (line.find("_atom_site_fract_x") != std::string::npos) return 2;
    return 0;
  }
  std::vector<CLI::Option*> add_options(CLI::App&) override { return {}; }
  int run(const std::string& file, const std::string& json) override {
    crystal::Crystal c;
    try {
      c = crystal::read_crystal_cif(file);
    } catch (const std::exception& e) {
      fmt::print(stderr, "dit check: error: {}\n", e.what());
      return kCheckBadInput;
    }
    const auto report = crystal::check_crystal(c);
    const auto fine = crystal::find_symmetry(c, 0.01), coarse = crystal::find_symmetry(c, 0.1);
    const auto formula = crystal::formula(crystal::composition_of(c));
    fmt::print("{}: {} ({} atoms in the cell), a b c = {:.4f} {:.4f} {:.4f} A, alpha beta gamma = {:.2f} {:.2f} "
               "{:.2f}, space group {} ({}) at 0.1 A, {} ({}) at 0.01 A\n",
               file, formula, c.size(), c.cell[0], c.cell[1], c.cell[2], c.cell[3], c.cell[4], c.cell[5],
               coarse.number ? coarse.international : "-", coarse.number, fine.number ? fine.international : "-",
               fine.number);
    return report_checks(report,
                         {{"file", file}, {"formula", formula}, {"atoms", c.size()}, {"cell", c.cell},
                          {"spacegroup", coarse.number}, {"spacegroup_symbol", coarse.international},
                          {"spacegroup_0.01", fine.number}},
                         json);
  }
};
DIT_REGISTER_FILE_CHECKER("cif-crystal", CrystalChecker);

}  // namespace
}  // namespace dit::cli
