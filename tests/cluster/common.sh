# Shared helpers for the cluster tests (sourced, not run).
#   cluster_require_or_skip   exit 77 (ctest SKIP_RETURN_CODE) without root or slurm/munge
#   cluster_start             make $WORK, start a private cluster in $WORK/slurm, stop it on EXIT
#   fail MSG                  print MSG and exit 1
#   py                        /usr/bin/python3 (h5py lives there)
CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIP=77
py=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit $SKIP; }

cluster_require_or_skip() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (a private slurmctld runs with SlurmUser=root)"
  local b
  for b in slurmctld slurmd munged sbatch; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] \
      || skip "$b not installed (scripts/install-deps.sh installs slurm-wlm and munge)"
  done
}

cluster_cleanup() {
  local rc=$?
  if [ -n "${WORK:-}" ] && [ -d "$WORK/slurm" ]; then
    if [ $rc -ne 0 ] && [ $rc -ne $SKIP ]; then
      local f
      for f in "$WORK"/*/logs/*.log; do
        [ -f "$f" ] && { echo "----- job log $f -----" >&2; cat "$f" >&2; }
      done
      echo "----- slurm logs (test failed) -----" >&2
      tail -n 30 "$WORK"/slurm/log/slurmctld.log "$WORK"/slurm/log/slurmd.log >&2 2>/dev/null || true
    fi
    "$CLUSTER_DIR/slurm-local.sh" stop "$WORK/slurm" || true
  fi
  if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
    if [ $rc -eq 0 ] || [ -z "${DIT_KEEP_WORK:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
  fi
  exit $rc
}

cluster_work() {  # a private temp dir, removed on exit (kept on failure with DIT_KEEP_WORK=1)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/dit-cluster.XXXXXX")
  chmod 0755 "$WORK"
  trap cluster_cleanup EXIT
}

cluster_start() {
  [ -n "${WORK:-}" ] || cluster_work
  SLURM_LOCAL_OWNER_PID=$$ "$CLUSTER_DIR/slurm-local.sh" start "$WORK/slurm"
  export SLURM_CONF=$WORK/slurm/slurm.conf
  export PATH=$PATH:/usr/sbin
}

# cluster_wait JOBID [TIMEOUT_S]: poll (0.5 s) until every task of JOBID has ended; fails unless
# all COMPLETED. Faster than `sbatch --wait`, whose poll interval grows to 10 s.
cluster_wait() {
  local id=$1 timeout=${2:-300} t0=$SECONDS states
  while :; do
    states=$(squeue -h -j "$id" -t all -o '%i %T' 2>/dev/null || true)
    if [ -n "$states" ] && ! grep -qvE ' (COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$' <<<"$states"; then
      break
    fi
    [ $((SECONDS - t0)) -lt "$timeout" ] || { squeue -j "$id" -t all >&2; fail "job $id not done after ${timeout}s"; }
    sleep 0.5
  done
  if grep -qv ' COMPLETED$' <<<"$states"; then
    echo "$states" >&2
    fail "job $id: not every task COMPLETED"
  fi
}

# dit_require CLI: the `dit` binary the tests run (ctest passes $<TARGET_FILE:dit_cli>).
dit_require() {
  DIT=${1:-${DIT_CLI:-}}
  [ -n "$DIT" ] && [ -x "$DIT" ] || fail "dit CLI not given or not executable: '${DIT}'"
  DIT=$(cd "$(dirname "$DIT")" && pwd)/$(basename "$DIT")
  export DIT
}

# write_job FILE OUTPUT SAMPLES [BATCH_SIZE [STEPS]]: a small image job (bundled Fashion-MNIST
# model, Euler, 4 steps by default, one thread) whose samples depend only on this file minus
# `output`. Batches of 2 by default, so a handful of samples still makes several batches.
write_job() {
  cat > "$1" <<EOT
domain = "image"
samples = $3
seed = 7
output = "$2"
batch_size = ${4:-2}
threads = 1

[sampler]
name = "euler"
steps = ${5:-4}

[image]
classes = [0, 1, 2]
EOT
}
