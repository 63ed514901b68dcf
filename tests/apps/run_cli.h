#pragma once
// Runs the dit CLI (DIT_CLI) as a user would and captures what it prints.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace dit::test {

struct Result {
  int code;            // exit status; -1 if the process did not exit normally
  std::string output;  // stdout and stderr
};

// Runs `program args` (another of the project's programs, e.g. dit-bench).
inline Result run_program(const std::string& program, const std::string& args) {
  const std::string cmd = program + " " + args + " 2>&1";
  Result r{-1, ""};
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline Result run(const std::string& args) { return run_program(DIT_CLI, args); }

}  // namespace dit::test
