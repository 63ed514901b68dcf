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

inline Result run(const std::string& args) {
  const std::string cmd = std::string(DIT_CLI) + " " + args + " 2>&1";
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

}  // namespace dit::test
