#include <dit/runtime.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace dit {

namespace {
std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  auto total = static_cast<int64_t>(s + 0.5);
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}
}  // namespace

Progress::Progress(std::string label, int64_t total, bool enabled, double log_every_s)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      log_every_s_(log_every_s) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0) {  // rates count from the first position seen (resumed runs)
    start_done_ = done;
    start_ = std::chrono::steady_clock::now();
  }
  done_ = done;
  extra_ = extra;
  if (!enabled_) return;
  double now = elapsed_s();
  double min_gap = tty_ ? 0.1 : log_every_s_;
  if (now - last_log_s_ < min_gap && done_ < total_) return;
  last_log_s_ = now;
  render(false);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  if (!extra.empty()) extra_ = extra;
  if (enabled_) render(true);
}

void Progress::render(bool final) {
  double elapsed = elapsed_s();
  int64_t base = start_done_ < 0 ? 0 : start_done_;
  double rate = elapsed > 0 ? static_cast<double>(done_ - base) / elapsed : 0.0;
  double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
  std::string rate_text = rate >= 1 || rate == 0 ? fmt::format("{:.2f} it/s", rate)
                                                 : fmt::format("{:.2f} s/it", 1.0 / rate);
  std::string tail = fmt::format("{} {} {}{}{}", rate_text, final ? "in" : "ETA",
                                 format_duration(final ? elapsed : eta),
                                 extra_.empty() ? "" : " ", extra_);
  if (tty_) {
    const int width = 30;
    double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 0.0;
    int fill = static_cast<int>(frac * width);
    std::string bar(fill, '=');
    if (fill < width) bar += '>' + std::string(width - fill - 1, ' ');
    fmt::print(stderr, "\r\033[2K{} {}/{} [{}] {:3.0f}% {}", label_, done_, total_, bar,
               frac * 100, tail);
    if (final) fmt::print(stderr, "\n");
  } else {
    fmt::print(stderr, "{} {}/{} {}\n", label_, done_, total_, tail);
  }
  std::fflush(stderr);
}

}  // namespace dit
