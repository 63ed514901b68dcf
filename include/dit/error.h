#pragma once
// Errors: every failure the engine reports is a dit::Error whose message names the file, the
// field and what was expected. The CLI prints it as one line on stderr and exits non-zero.
#include <stdexcept>
#include <string>

namespace dit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dit
