#!/usr/bin/env bash
# The one command a GPU session runs on the device machine, from the repository root:
#   bash scripts/device/check.sh          (device tool: timeout_s 480; results come back in $OUT)
# Builds only kernels/cuda, as its own CMake project (CUDA toolkit only: no torch, fmt or other
# -dev packages), for the local GPU's architecture, then runs in order of importance, each step
# with its own time limit:
#   dit-cuda-selftest check                  correctness: the pass/fail gate
#   dit-cuda-selftest bench --json           our kernels: TFLOP/s (attention), GB/s (adaLN)
#   python3 scripts/device/bench_sdpa.py     PyTorch SDPA (flash, cuDNN) at the same shapes
#   compute-sanitizer memcheck, racecheck    on `check --quick`, when the toolkit has it
# Every step's output is tee'd to $LOG/<step>.log (default out/device-logs), with one line per
# step (exit status, seconds) in summary.txt; build.log has ptxas's registers and spills per
# kernel, sass.txt the tensor-core (HMMA) and local-memory (LDL/STL) instruction counts per kernel.
# Exit 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/device/common.sh
{
  nvidia-smi
  nvcc --version
  cmake --version | head -1
} >"$LOG/environment.txt" 2>&1

arch=$(gpu_arch)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

step configure 90 cmake -S kernels/cuda -B build-cuda "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$arch" -DCMAKE_CUDA_FLAGS=-Xptxas=-v ||
  exit 1
step build 240 cmake --build build-cuda -j "$(nproc)" || exit 1
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass build-cuda/libdit_cuda_kernels.a | awk '
    /Function :/ { name = $3; seen[name] = 1 }
    /HMMA/ { hmma[name]++ }
    /[^A-Z](LDL|STL)[ .]/ { local_ops[name]++ }
    END { for (n in seen) printf "%5d HMMA %3d LDL/STL  %s\n", hmma[n], local_ops[n], n }
  ' | sort -k5 >"$LOG/sass.txt"
fi
step check 180 build-cuda/dit-cuda-selftest check || status=1
step bench 90 build-cuda/dit-cuda-selftest bench --json "$LOG/bench.json" || status=1
step sdpa 120 python3 scripts/device/bench_sdpa.py || status=1
sanitizer=$(command -v compute-sanitizer ||
  ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  for tool in memcheck racecheck; do
    step "$tool" 120 "$sanitizer" --tool "$tool" --error-exitcode 1 \
      build-cuda/dit-cuda-selftest check --quick || status=1
  done
else
  echo "== compute-sanitizer not found: memcheck and racecheck skipped" | tee -a "$summary"
fi
echo "== overall: $([ "$status" -eq 0 ] && echo PASS || echo FAIL)" | tee -a "$summary"
exit "$status"
