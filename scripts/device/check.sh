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
# The device tool brings back at most 8 files from $OUT: every log goes to $LOG, and on exit
# $OUT gets summary.txt, the JSON results and logs.tar.gz (all of $LOG).
OUT=${OUT:-out/device}
LOG=${LOG:-out/device-logs}
mkdir -p "$OUT" "$LOG"
summary="$LOG/summary.txt"
: >"$summary"
status=0
collect() {
  cp "$summary" "$LOG"/*.json "$OUT"/ 2>/dev/null
  tar -czf "$OUT/logs.tar.gz" -C "$LOG" .
}
trap collect EXIT

# step NAME LIMIT_S COMMAND...
step() {
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$summary"
  timeout "$limit" "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$summary"
  return "$rc"
}

export PATH="$PATH:/usr/local/cuda/bin"
{
  nvidia-smi
  nvcc --version
  cmake --version | head -1
} >"$LOG/environment.txt" 2>&1

# sm_90 (H100/H200) builds as 90a like the top-level default; anything else as reported.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
case "$arch" in
  90) arch=90a ;;
  "") arch="80;90a" ;;
esac
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
