# Shared by the device scripts (check.sh, engine.sh), sourced from the repository root.
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

# step NAME LIMIT_S COMMAND...: runs it with a time limit, output tee'd to $LOG/NAME.log, one
# line before and one after (exit status, seconds) in summary.txt; returns its exit status.
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

# CUDA architectures for this machine's GPU: sm_90 (H100/H200) as 90a like the top-level
# default, anything else as reported, both defaults without a GPU.
gpu_arch() {
  local arch
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  case "$arch" in
    90) echo 90a ;;
    "") echo "80;90a" ;;
    *) echo "$arch" ;;
  esac
}
