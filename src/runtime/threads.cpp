#include <dit/runtime.h>
#include <sched.h>

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

int set_threads(int n) {
  if (n <= 0) n = usable_cpus();
  at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace dit
