// dit check FILE [--json OUT.json] [options of FILE's type]: the checks of FILE's file type
// (apps/dit/check.h); each type registers its checker in its own file.
#include <dit/error.h>
#include <dit/files.h>
#include <dit/registry.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <dit/fs.h>
#include <map>

#include "check.h"
#include "commands.h"

namespace dit::cli {
namespace {

using CheckerRegistry = Registry<std::shared_ptr<FileChecker>>;
CheckerRegistry& checkers() {
  static CheckerRegistry registry("file checker");
  return registry;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The checker whose extension ends `file` (the longest that matches; between checkers of the
// same extension, the one whose claims() on the content is highest), or nullptr.
FileChecker* checker_for(const std::string& file) {
  const std::string name = lower(file);
  FileChecker* best = nullptr;
  size_t best_len = 0;
  int best_claim = 0;
  for (const auto& id : checkers().names()) {
    FileChecker* checker = checkers().find(id).get();
    for (const auto& ext : checker->extensions()) {
      if (!ends_with(name, ext) || ext.size() < best_len) continue;
      const int claim = checker->claims(file);
      if (claim == 0) continue;
      if (ext.size() > best_len || claim > best_claim) best = checker, best_len = ext.size(), best_claim = claim;
    }
  }
  return best;
}

// ".sdf, .sd (docking poses: ...)" for every registered type, one per line.
std::string known_types(const std::string& indent) {
  std::string out;
  for (const auto& id : checkers().names()) {
    const auto& checker = *checkers().find(id);
    std::string exts;
    for (const auto& e : checker.extensions()) exts += (exts.empty() ? "" : ", ") + e;
    out += fmt::format("{}{}: {}\n", indent, exts, checker.description());
  }
  return out.empty() ? indent + "(none in this build)\n" : out;
}

struct Args {
  std::string file, json;
  std::map<FileChecker*, std::vector<CLI::Option*>> options;  // each type's own flags
};

int run_check(const Args& a) {
  const std::string name = lower(a.file);
  if (ends_with(name, ".gz") || ends_with(name, ".bz2") || ends_with(name, ".xz")) {
    fmt::print(stderr, "dit check: error: {}: compressed files are not read here; decompress it first\n",
               a.file);
    return kCheckBadInput;
  }
  if (!dit::fs::is_regular_file(a.file)) {
    fmt::print(stderr, "dit check: error: {}: no such file\n", a.file);
    return kCheckBadInput;
  }
  FileChecker* checker = checker_for(a.file);
  if (!checker) {
    fmt::print(stderr, "dit check: error: {}: no checks for this file type; dit check reads\n{}", a.file,
               known_types("  "));
    return kCheckBadInput;
  }
  for (const auto& [other, flags] : a.options) {
    if (other == checker) continue;
    for (const auto* flag : flags)
      if (flag->count() > 0) {
        fmt::print(stderr, "dit check: error: {}: {} applies to {} files ({}), not to this file type\n",
                   a.file, flag->get_name(), other->extensions().front(), other->description());
        return kCheckBadInput;
      }
  }
  return checker->run(a.file, a.json);
}

}  // namespace

std::string failed_checks(const CheckReport& report) {
  std::string out;
  for (const auto& v : report.values)
    if (!v.pass) out += fmt::format("{}{}={:.3g} (limit {:.3g})", out.empty() ? "" : ", ", v.name, v.value, v.threshold);
  return out;
}

int report_checks(const CheckReport& report, nlohmann::json doc, const std::string& json) {
  fmt::print("{:<28} {:>12} {:>12}  {}\n", "check", "value", "threshold", "");
  for (const auto& v : report.values)
    fmt::print("{:<28} {:>12.4g} {:>12.4g}  {}\n", v.name, v.value, v.threshold, v.pass ? "" : "!");
  fmt::print("{}\n", report.valid() ? "passes every check" : "FAILS some check (marked !)");
  if (!json.empty()) {
    doc["valid"] = report.valid();
    for (const auto& v : report.values)
      doc["checks"].push_back({{"name", v.name}, {"value", v.value}, {"threshold", v.threshold}, {"pass", v.pass}});
    try {
      write_file_atomic(json, doc.dump(2) + "\n");
    } catch (const Error& e) {
      fmt::print(stderr, "dit check: error: cannot write the JSON report: {}\n", e.what());
      return kCheckBadInput;
    }
  }
  return report.valid() ? kCheckAllValid : kCheckSomeInvalid;
}

bool register_file_checker(const std::string& name, std::shared_ptr<FileChecker> checker) {
  return checkers().add(name, std::move(checker));
}

void add_check(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "check",
      "Physics and chemistry checks of every structure in a file; the file's type picks the checks "
      "(e.g. PoseBusters-style checks of docking poses in an SDF file)");
  cmd->add_option("file", a->file, "Structures to check (the type is taken from the extension)")->required();
  cmd->add_option("--json", a->json, "Also write every value, threshold and verdict to this JSON file");
  for (const auto& id : checkers().names()) {
    FileChecker* checker = checkers().find(id).get();
    a->options[checker] = checker->add_options(*cmd);
  }
  cmd->footer(
      "File types:\n" + known_types("  ") +
      "Values marked ! fail their threshold; '-' is not applicable (e.g. no aromatic ring).\n"
      "Exit status: 0 every structure passes every check; 1 some structure fails a check; 2 bad\n"
      "input (unreadable file, an unknown file type, a malformed record, a structure that cannot\n"
      "be read, a missing option file, an option of another file type); other codes: bad\n"
      "command-line flags.");
  cmd->callback([a] {
    const int code = run_check(*a);
    std::fflush(stdout);
    std::fflush(stderr);
    // The exit status carries the verdict (1 is not an error here), so leave directly.
    std::exit(code);
  });
}

}  // namespace dit::cli
