#pragma once
// Shared by the dit and dit-bench mains: the global --no-autotune flag.
#include <CLI/CLI.hpp>
#include <dit/kernels.h>

#include <cstring>

namespace dit::apps {

// Registers --no-autotune (accepted before or after the subcommand) and applies it before any
// subcommand runs: CLI11 runs a subcommand's callback while parsing, so the flag is read from
// argv here rather than from a callback that might come too late.
inline void add_no_autotune_flag(CLI::App& app, int argc, char** argv) {
  app.fallthrough();
  app.add_flag("--no-autotune",
               "Fixed kernel tile sizes: no timed search, no autotune cache (also DIT_AUTOTUNE=0)");
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--no-autotune") == 0) dit::kernels::set_autotune(false);
}

}  // namespace dit::apps
