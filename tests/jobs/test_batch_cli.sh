#!/usr/bin/env bash
# dit batch / dit merge as users run them: dry run, one-line errors, MPI ranks as shards, SIGTERM
# finishing the current batch, resume, and merged shards equal to one run (read with h5py).
#   test_batch_cli.sh DIT_CLI SOURCE_DIR
set -euo pipefail
dit=$1
src=$2
tmp=$(mktemp -d /tmp/dit-batch-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }

job() {  # job NAME SAMPLES OUTPUT [extra lines]
  cat > "$1" <<TOML
domain = "image"
samples = $2
seed = 11
batch_size = 4
threads = 1
output = "$3"
${4:-}
[sampler]
name = "euler"
steps = ${STEPS:-3}
[image]
classes = [2, 5]
TOML
}

same() {  # same A B: every per-sample dataset equal, bit for bit
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for name in ("images/value", "images/label", "samples/index", "samples/seed", "samples/valid"):
    x, y = a[name][()], b[name][()]
    if x.shape != y.shape or x.tobytes() != y.tobytes():
        sys.exit(f"{name} differs between {sys.argv[1]} and {sys.argv[2]}")
PY
}

# --- dry run: validates and plans, writes nothing
job small.toml 12 small.h5
"$dit" batch small.toml --dry-run > plan.txt
grep -q "3 batches" plan.txt || fail "dry run plan: $(cat plan.txt)"
[ ! -e small.h5 ] || fail "dry run wrote output"

# --- a bad job file: one line naming file and key, exit 1, no output
job bad.toml 12 bad.h5 "colour = 3"
if "$dit" batch bad.toml 2> err.txt; then fail "bad job ran"; fi
[ "$(wc -l < err.txt)" -eq 1 ] || fail "error is not one line: $(cat err.txt)"
grep -q "bad.toml: colour: unknown key" err.txt || fail "error does not name the key: $(cat err.txt)"
[ ! -e bad.h5 ] || fail "bad job left output"

# --- unsharded reference, then two MPI ranks as shards, merged
"$dit" batch small.toml -q
/usr/bin/python3 "$src/tests/jobs/check_h5md.py" small.h5 --samples 12
if command -v mpirun > /dev/null; then
  job mpi.toml 12 mpi.h5
  mpirun --allow-run-as-root --oversubscribe -np 2 "$dit" batch mpi.toml -q
  [ -e mpi.shard-0000-of-0002.h5 ] && [ -e mpi.shard-0001-of-0002.h5 ] || fail "MPI ranks did not write shard files: $(ls)"
  "$dit" merge -o mpi.h5 mpi.shard-0000-of-0002.h5 mpi.shard-0001-of-0002.h5
  same small.h5 mpi.h5
  if "$dit" merge -o partial.h5 mpi.shard-0000-of-0002.h5 2> err.txt; then fail "merge with a shard missing succeeded"; fi
  grep -q "samples are missing" err.txt || fail "merge error: $(cat err.txt)"
  [ ! -e partial.h5 ] || fail "failed merge left output"
else
  echo "mpirun not installed: MPI part skipped"
fi

# --- SIGTERM: the current batch finishes and is flushed; rerunning completes the job
STEPS=10 job long.toml 400 long.h5  # about 10 s on one thread: time to be interrupted
STEPS=10 job ref.toml 400 ref.h5
"$dit" batch ref.toml -q
"$dit" batch long.toml -q 2> term.txt &
pid=$!
for _ in $(seq 1 600); do  # wait for the first flushed batch
  if [ -e long.h5 ] && HDF5_USE_FILE_LOCKING=FALSE /usr/bin/python3 -c "import h5py,sys; sys.exit(0 if 'samples' in h5py.File('long.h5','r') else 1)" 2> /dev/null; then break; fi
  sleep 0.1
done
kill -TERM "$pid"
if wait "$pid"; then fail "job stopped by SIGTERM exited 0"; fi
grep -q "interrupted" term.txt || fail "no interruption message: $(cat term.txt)"
n=$(/usr/bin/python3 -c "import h5py; print(len(h5py.File('long.h5','r')['samples/index']))")
[ "$n" -gt 0 ] && [ "$n" -lt 400 ] && [ $((n % 4)) -eq 0 ] || fail "after SIGTERM the file holds $n samples"
[ ! -e long.h5.lock ] || fail "lock file left behind"
"$dit" batch long.toml -q 2> resume.txt
grep -q "$n resumed" resume.txt || fail "resume did not skip $n samples: $(cat resume.txt)"
same ref.h5 long.h5
echo "batch CLI: dry run, errors, MPI shards + merge, SIGTERM + resume: all as expected"
