#pragma once
// OpenMM platform selection shared by the domains that run OpenMM (protein relaxation, docking
// refinement). Header-only, so that the core library (which does not link OpenMM) never
// compiles it: only translation units of OpenMM-linked domains include it.
#include <dit/error.h>

#include <OpenMM.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace dit::openmm {

// Loads OpenMM's CPU plugin once per process (thread-safe) from $OPENMM_PLUGIN_DIR, OpenMM's
// default plugin directory or Debian's (libopenmm-plugins); returns the load errors.
inline const std::vector<std::string>& load_cpu_plugin() {
  static std::once_flag once;
  static std::vector<std::string> failures;
  std::call_once(once, [] {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("OPENMM_PLUGIN_DIR"); env && *env) dirs.emplace_back(env);
    dirs.push_back(OpenMM::Platform::getDefaultPluginsDirectory());
    dirs.emplace_back("/usr/lib/x86_64-linux-gnu/openmm/plugins");
    dirs.emplace_back("/usr/lib/openmm/plugins");
    for (const auto& dir : dirs) {
      try {
        OpenMM::Platform::getPlatformByName("CPU");
        return;  // loaded (from an earlier directory, or by the application)
      } catch (const OpenMM::OpenMMException&) {
      }
      try {
        OpenMM::Platform::loadPluginLibrary(dir + "/libOpenMMCPU.so");
      } catch (const OpenMM::OpenMMException& e) {
        failures.push_back(dir + ": " + e.what());
      }
    }
  });
  return failures;
}

// "CPU" (falls back to "Reference" when the plugin cannot be loaded) or "Reference"; `who`
// names the option in the error for anything else.
inline OpenMM::Platform& platform(const std::string& wanted, const std::string& who) {
  if (wanted != "CPU" && wanted != "Reference")
    throw Error(who + ": platform '" + wanted + "' (expected CPU or Reference)");
  if (wanted == "CPU") {
    load_cpu_plugin();
    try {
      return OpenMM::Platform::getPlatformByName("CPU");
    } catch (const OpenMM::OpenMMException&) {
      // the Reference platform below; callers report which platform ran
    }
  }
  return OpenMM::Platform::getPlatformByName("Reference");
}

}  // namespace dit::openmm
