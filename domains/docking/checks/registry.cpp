// The pose checks live in the docking domain's dit::CheckRegistry<PoseCheckInput> (dit/check.h):
// each check registers itself from its own file (domains/docking/checks/NAME.cpp);
// run_pose_checks runs them all, in name order.
#include <dit/check.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <fmt/format.h>

namespace dit::docking {
namespace {
CheckRegistry<PoseCheckInput>& registry() { return CheckRegistry<PoseCheckInput>::instance(); }
}  // namespace

bool register_pose_check(const std::string& name, const std::string& description, PoseCheckFn fn,
                         bool needs_receptor) {
  CheckRegistry<PoseCheckInput>::Applies applies;
  if (needs_receptor) applies = [](const PoseCheckInput& in) { return in.receptor != nullptr; };
  return registry().add(name, description, std::move(fn), std::move(applies));
}

std::vector<std::string> pose_check_names() {
  std::vector<std::string> names;
  for (const auto& [name, description] : registry().list()) names.push_back(name);
  return names;
}

PoseCheckReport run_pose_checks(const PoseCheckInput& input) {
  try {
    return registry().run<PoseCheckReport>(input);
  } catch (const dit::Error& e) {
    throw dit::Error(fmt::format("pose {}", e.what()));
  }
}

}  // namespace dit::docking
