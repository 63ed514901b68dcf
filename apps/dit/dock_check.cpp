// `dit check POSES.sdf [--receptor REC.pdb] [--reference CRYSTAL.sdf] [--json OUT.json]`: the
// file checker of SDF files (apps/dit/check.h): PoseBusters-style validity checks (dock
// configuration) on every pose.
#include <GraphMol/FileParsers/MolSupplier.h>
#include <GraphMol/MolAlign/AlignMolecules.h>
#include <GraphMol/MolOps.h>
#include <RDGeneral/RDLog.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/files.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dit/fs.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "check.h"

namespace dit::cli {
namespace {

// RDKit reports parse and sanitisation problems on its own log; while we read, its error and
// warning logs go to a buffer, so that a bad record becomes one line of ours.
class RdkitLogCapture {
 public:
  RdkitLogCapture() {
    if (!rdErrorLog) RDLog::InitLogs();
    for (auto* log : {&rdErrorLog, &rdWarningLog, &rdInfoLog})
      if (*log) saved_.push_back({log->get(), (*log)->dp_dest}), (*log)->dp_dest = &text_;
  }
  ~RdkitLogCapture() {
    for (auto& s : saved_) s.first->dp_dest = s.second;
  }
  // The ERROR lines logged since the last call, without their timestamps.
  std::string take_errors() {
    std::string out, line;
    std::istringstream in(text_.str());
    while (std::getline(in, line)) {
      const auto at = line.find("ERROR: ");
      if (at == std::string::npos) continue;
      std::string msg = line.substr(at + 7);
      while (!msg.empty() && std::isspace(static_cast<unsigned char>(msg.back()))) msg.pop_back();
      if (msg.empty()) continue;
      out += (out.empty() ? "" : "; ") + msg;
    }
    text_.str("");
    text_.clear();
    return out;
  }

 private:
  std::ostringstream text_;
  std::vector<std::pair<boost::logging::rdLogger*, std::ostream*>> saved_;
};

// The first molecule of an SDF file, sanitised, hydrogens removed (for the RMSD).
std::unique_ptr<RDKit::ROMol> read_reference(const std::string& path, RdkitLogCapture& log) {
  std::ifstream file(path, std::ios::binary);
  if (!dit::fs::is_regular_file(path) || !file)
    throw Error(fmt::format("{}: cannot read reference ligand file", path));
  RDKit::ForwardSDMolSupplier supplier(&file, false, /*sanitize=*/false, /*removeHs=*/false);
  std::unique_ptr<RDKit::ROMol> mol;
  try {
    mol.reset(supplier.next());
  } catch (const std::exception& e) {
    throw Error(fmt::format("{} record 1: malformed SDF record: {}", path, e.what()));
  }
  if (!mol) {
    const std::string why = log.take_errors();
    throw Error(fmt::format("{} record 1: malformed SDF record{}", path, why.empty() ? "" : ": " + why));
  }
  if (mol->getNumConformers() == 0) throw Error(fmt::format("{} record 1: no coordinates", path));
  try {
    RDKit::RWMol rw(*mol);
    RDKit::MolOps::sanitizeMol(rw);
    return std::unique_ptr<RDKit::ROMol>(RDKit::MolOps::removeHs(static_cast<const RDKit::ROMol&>(rw)));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{} record 1: RDKit cannot sanitise the molecule: {}", path, e.what()));
  }
}

std::string format_value(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.3g}", v);
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

struct DockCheckArgs {
  std::string poses, receptor, reference, json;
};

int check_poses(const DockCheckArgs& a) {
  RdkitLogCapture log;
  std::unique_ptr<docking::Receptor> receptor;
  std::unique_ptr<RDKit::ROMol> reference;
  try {
    if (!a.receptor.empty()) receptor = std::make_unique<docking::Receptor>(docking::read_receptor(a.receptor));
    if (!a.reference.empty()) reference = read_reference(a.reference, log);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dit check: error: {}\n", e.what());
    return kCheckBadInput;
  }
  std::ifstream file(a.poses, std::ios::binary);
  if (!dit::fs::is_regular_file(a.poses) || !file) {
    fmt::print(stderr, "dit check: error: {}: cannot read poses file\n", a.poses);
    return kCheckBadInput;
  }
  // Streamed record by record; sanitised here so that a failure names its reason.
  RDKit::ForwardSDMolSupplier supplier(&file, false, /*sanitize=*/false, /*removeHs=*/false);

  nlohmann::json out_poses = nlohmann::json::array(), out_errors = nlohmann::json::array();
  std::vector<std::string> columns;
  std::vector<size_t> widths;
  int64_t index = 0, n_poses = 0, n_valid = 0, n_bad = 0;
  auto bad_record = [&](const std::string& message) {
    fmt::print(stderr, "dit check: error: {}\n", message);
    out_errors.push_back(message);
    ++n_bad;
  };
  while (!supplier.atEnd()) {
    const std::string where = fmt::format("{} record {}", a.poses, index + 1);
    std::unique_ptr<RDKit::ROMol> raw;
    try {
      raw.reset(supplier.next());
    } catch (const std::exception& e) {
      raw.reset();
      log.take_errors();
      bad_record(fmt::format("{}: malformed SDF record: {}", where, e.what()));
      ++index;
      continue;
    }
    if (!raw) {
      const std::string why = log.take_errors();
      if (supplier.atEnd() && file.eof() && why.empty()) break;  // blank tail after the last $$$$
      bad_record(fmt::format("{}: malformed SDF record{}", where, why.empty() ? "" : ": " + why));
      ++index;
      continue;
    }
    std::string name;
    raw->getPropIfPresent("_Name", name);
    if (name.empty()) name = fmt::format("{}#{}", a.poses, index);
    const std::string named = fmt::format("{} ({})", where, name);
    RDKit::RWMol pose(*raw);
    try {
      RDKit::MolOps::sanitizeMol(pose);
    } catch (const std::exception& e) {
      log.take_errors();
      bad_record(fmt::format("{}: RDKit cannot sanitise the molecule: {}", named, e.what()));
      ++index;
      continue;
    }
    if (pose.getNumConformers() == 0) {
      bad_record(fmt::format("{}: no coordinates", named));
      ++index;
      continue;
    }

    docking::PoseCheckReport report;
    double rmsd = std::nan("");
    try {
      report = docking::run_pose_checks(docking::PoseCheckInput{pose, -1, receptor.get()});
      if (reference) {
        // Symmetry-corrected heavy-atom RMSD in place (no alignment): RDKit's CalcRMS.
        std::unique_ptr<RDKit::ROMol> heavy(RDKit::MolOps::removeHs(static_cast<const RDKit::ROMol&>(pose)));
        try {
          rmsd = RDKit::MolAlign::CalcRMS(*heavy, *reference);
        } catch (const std::exception& e) {
          throw Error(fmt::format("does not match the reference {}: {}", a.reference, e.what()));
        }
      }
    } catch (const std::exception& e) {
      log.take_errors();
      bad_record(fmt::format("{}: {}", named, e.what()));
      ++index;
      continue;
    }
    log.take_errors();
    const bool valid = report.pb_valid();

    if (columns.empty()) {  // the header, once the first report names the values
      columns = {"pose", "name"};
      for (const auto& v : report.values) columns.push_back(v.name);
      if (reference) columns.push_back("rmsd");
      columns.push_back("pb_valid");
      for (const auto& c : columns) widths.push_back(std::max<size_t>(c.size(), 5));
      widths[1] = std::max<size_t>(widths[1], 16);
      std::string line;
      for (size_t c = 0; c < columns.size(); ++c) line += fmt::format("{:<{}} ", columns[c], widths[c]);
      fmt::print("{}\n", line);
    }
    std::vector<std::string> cells = {std::to_string(index), name.size() > 32 ? name.substr(0, 32) : name};
    for (const auto& v : report.values) cells.push_back(format_value(v.value) + (v.pass ? "" : "!"));
    if (reference) cells.push_back(format_value(rmsd));
    cells.push_back(valid ? "yes" : "no");
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c)
      line += fmt::format("{:<{}} ", cells[c], c < widths.size() ? widths[c] : 8);
    fmt::print("{}\n", line);
    std::fflush(stdout);

    nlohmann::json checks = nlohmann::json::array();
    for (const auto& v : report.values)
      checks.push_back({{"name", v.name}, {"value", number_or_null(v.value)},
                        {"threshold", v.threshold}, {"pass", v.pass}});
    nlohmann::json entry = {{"index", index}, {"name", name}, {"pb_valid", valid}, {"checks", checks}};
    if (reference) entry["rmsd"] = number_or_null(rmsd);
    out_poses.push_back(std::move(entry));
    ++n_poses;
    n_valid += valid;
    ++index;
  }
  fmt::print("{} poses, {} PB-valid{}\n", n_poses, n_valid,
             n_bad ? fmt::format(", {} unreadable records", n_bad) : std::string());
  if (n_poses == 0 && n_bad == 0) {
    fmt::print(stderr, "dit check: error: {}: no SDF records\n", a.poses);
    return kCheckBadInput;
  }
  if (!a.json.empty()) {
    nlohmann::json doc = {{"poses_file", a.poses},
                          {"receptor", a.receptor.empty() ? nlohmann::json() : nlohmann::json(a.receptor)},
                          {"reference", a.reference.empty() ? nlohmann::json() : nlohmann::json(a.reference)},
                          {"n_poses", n_poses},
                          {"n_pb_valid", n_valid},
                          {"errors", out_errors},
                          {"poses", out_poses}};
    try {  // written to a temporary name and renamed: never a half-written report
      write_file_atomic(a.json, doc.dump(2) + "\n");
    } catch (const Error& e) {
      fmt::print(stderr, "dit check: error: cannot write the JSON report: {}\n", e.what());
      return kCheckBadInput;
    }
  }
  if (n_bad) return kCheckBadInput;
  return n_valid == n_poses ? kCheckAllValid : kCheckSomeInvalid;
}

class SdfPoseChecker final : public FileChecker {
 public:
  std::string description() const override {
    return "docking poses, PoseBusters-style checks of every record (bonds, angles, clashes, "
           "flatness, internal energy; --receptor adds the protein-ligand checks)";
  }
  std::vector<std::string> extensions() const override { return {".sdf", ".sd"}; }
  std::vector<CLI::Option*> add_options(CLI::App& check) override {
    return {check.add_option("-r,--receptor", args_.receptor,
                             "SDF poses: protein (PDB or mmCIF) for the intermolecular checks"),
            check.add_option("--reference", args_.reference,
                             "SDF poses: crystal ligand (SDF, first record): adds the symmetry-corrected "
                             "heavy-atom RMSD in place (no alignment)")};
  }
  int run(const std::string& file, const std::string& json) override {
    DockCheckArgs a = args_;
    a.poses = file;
    a.json = json;
    return check_poses(a);
  }

 private:
  DockCheckArgs args_;
};
DIT_REGISTER_FILE_CHECKER("sdf-poses", SdfPoseChecker);

}  // namespace
}  // namespace dit::cli
