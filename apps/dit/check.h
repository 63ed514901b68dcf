#pragma once
// `dit check FILE`: one command for every structure file; the file's type picks the checks.
// Each file type registers a FileChecker in its own file (DIT_REGISTER_FILE_CHECKER), as
// samplers and domains do: SDF poses -> the docking pose checks (dock_check.cpp); protein and
// crystal files join the same way. The command owns what is common: the FILE argument, --json,
// the choice by extension, the exit status and the error for a file type nobody checks.
#include <CLI/CLI.hpp>
#include <dit/check.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace dit::cli {

// Exit status of `dit check`, whatever the file type.
constexpr int kCheckAllValid = 0;    // every structure in the file passes every check
constexpr int kCheckSomeInvalid = 1; // some structure fails a check
constexpr int kCheckBadInput = 2;    // unreadable file or record, bad option value

class FileChecker {
 public:
  virtual ~FileChecker() = default;
  // What the file holds and which checks run, for --help ("docking poses: PoseBusters-style
  // checks").
  virtual std::string description() const = 0;
  // Lower-case file name endings it reads, with the dot (".sdf").
  virtual std::vector<std::string> extensions() const = 0;
  // How sure it is that it reads `file`, once the extension matched: 0 not its file, 1 by the
  // extension alone (the default), 2 the content says so. Types that share an extension (.cif:
  // mmCIF backbones and crystal CIFs) tell their files apart this way.
  virtual int claims(const std::string& file) const { return 1; }
  // Adds its own flags to `dit check` and returns them: a flag of one file type given for a
  // file of another is an error.
  virtual std::vector<CLI::Option*> add_options(CLI::App& check) = 0;
  // Checks every structure in `file`, prints one table row per structure and a summary line,
  // writes the JSON report when `json` is not empty (atomically), and returns the exit status.
  virtual int run(const std::string& file, const std::string& json) = 0;
};

// The end of a checker's run() for one structure: prints the table of `report` (value,
// threshold, '!' on failures) and the verdict line, writes `doc` with the report's values as
// "checks" and its verdict as "valid" to `json` (atomically) when not empty, and returns the
// exit status (kCheckAllValid / kCheckSomeInvalid, kCheckBadInput when the JSON cannot be written).
int report_checks(const CheckReport& report, nlohmann::json doc, const std::string& json);

// The failing values of a report, "name=value (limit threshold), ..." (the sampling commands'
// line for a flagged sample).
std::string failed_checks(const CheckReport& report);

// Returns false (and keeps the first) when the name is empty or taken (dit::Registry policy).
bool register_file_checker(const std::string& name, std::shared_ptr<FileChecker> checker);

#define DIT_REGISTER_FILE_CHECKER(NAME, TYPE)                                                \
  static const bool dit_file_checker_registered_##TYPE =                                     \
      ::dit::cli::register_file_checker(NAME, std::make_shared<TYPE>())

}  // namespace dit::cli
