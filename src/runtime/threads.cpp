#include <dit/runtime.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>

namespace dit {

namespace {
// CPUs this process may run on: a SLURM task, taskset or a container sees its share here,
// where hardware_concurrency() would report every core of the node.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
}  // namespace

double process_age_s() {
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  // fields after the name: state(3) ppid(4) ... starttime(22), in clock ticks since boot
  for (int i = 3; i < 22 && fields >> field;) ++i;
  unsigned long long start_ticks = 0;
  if (!(fields >> start_ticks)) return 0;
  timespec now{};
  if (clock_gettime(CLOCK_BOOTTIME, &now) != 0) return 0;
  const double boot_s = now.tv_sec + now.tv_nsec * 1e-9;
  return std::max(0.0, boot_s - static_cast<double>(start_ticks) / sysconf(_SC_CLK_TCK));
}

int set_threads(int n) {
  if (n <= 0) n = usable_cpus();
  at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace dit
