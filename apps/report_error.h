#pragma once
// Shared by the dit and dit-bench mains: the exception in flight becomes one line on stderr.
#include <dit/error.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <exception>

namespace dit::apps {

// Call only inside a catch block. Prints "<program>: error: <message>" and returns exit code 1.
inline int report_current_exception(const char* program) {
  try {
    throw;
  } catch (const c10::Error& e) {  // libtorch: drop its C++ backtrace
    fmt::print(stderr, "{}: error: {}\n", program, e.what_without_backtrace());
  } catch (const std::exception& e) {  // dit::Error and the rest
    fmt::print(stderr, "{}: error: {}\n", program, e.what());
  } catch (...) {
    fmt::print(stderr, "{}: error: unknown exception\n", program);
  }
  return 1;
}

}  // namespace dit::apps
