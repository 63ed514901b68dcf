// StopOnSignal (dit/runtime.h): SIGINT/SIGTERM set a flag that long runs poll.
#include <dit/runtime.h>

#include <csignal>

namespace dit {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void request_stop(int) { g_stop = true; }
}  // namespace

const std::atomic<bool>& StopOnSignal::flag() { return g_stop; }

StopOnSignal::StopOnSignal() {
  g_stop = false;
  old_int_ = std::signal(SIGINT, request_stop);
  old_term_ = std::signal(SIGTERM, request_stop);
}

StopOnSignal::~StopOnSignal() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

}  // namespace dit
