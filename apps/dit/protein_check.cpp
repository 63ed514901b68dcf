// `dit check BACKBONE.pdb`: the file checker of PDB / mmCIF files (apps/dit/check.h): the
// protein domain's backbone checks (docs/protein.md) on the first chain, one row per check.
#include <dit/error.h>
#include <dit/files.h>
#include <dit/protein.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "check.h"

namespace dit::cli {
namespace {

class BackboneChecker final : public FileChecker {
 public:
  std::string description() const override {
    return "protein backbone (first chain, or --chain): CA-CA distances, bond lengths and angles, "
           "peptide planarity, CA chirality, clashes, Ramachandran, radius of gyration";
  }
  std::vector<std::string> extensions() const override { return {".pdb", ".ent", ".cif", ".mmcif"}; }
  std::vector<CLI::Option*> add_options(CLI::App& check) override {
    return {check.add_option("--chain", chain_, "PDB / mmCIF: the chain to check (default: the first protein chain)")};
  }
  int run(const std::string& file, const std::string& json) override {
    protein::Backbone backbone;
    try {
      backbone = protein::read_backbone_pdb(file, chain_);
    } catch (const std::exception& e) {
      fmt::print(stderr, "dit check: error: {}\n", e.what());
      return kCheckBadInput;
    }
    const auto report = protein::check_backbone(backbone);
    const auto ss = protein::assign_secondary_structure(backbone);
    fmt::print("{}: {} residues, helix {:.0f}% strand {:.0f}% coil {:.0f}% (DSSP, ours)\n", file,
               backbone.size(), 100 * ss.helix, 100 * ss.strand, 100 * ss.coil);
    return report_checks(report,
                         {{"file", file}, {"residues", backbone.size()}, {"dssp", ss.dssp}, {"helix", ss.helix},
                          {"strand", ss.strand}, {"coil", ss.coil}},
                         json);
  }

 private:
  std::string chain_;
};
DIT_REGISTER_FILE_CHECKER("pdb-backbone", BackboneChecker);

}  // namespace
}  // namespace dit::cli
