#!/usr/bin/env bash
# Faults injected into `dit batch` (image domain, small jobs), each checked with h5py against an
# uninterrupted run (tests/cluster/h5check.py: every per-sample dataset bit for bit):
#   disk full       the output on a small tmpfs, filled to several levels by a filler file: the
#                   job fails with one line naming the output, exit 1, the file opens and holds
#                   only complete samples (every per-sample dataset as long as /samples/index);
#                   after the filler is removed the same command finishes the job.
#   not writable    a read-only tmpfs (EROFS: root is refused too, unlike chmod 555), and a
#                   regular file where the output's folder should be: one line, exit 1, nothing
#                   written.
#   SIGKILL         at 5 seeded random times within one run's duration; after each, the file
#                   (if any) holds only complete samples, and a rerun finishes the job.
# Each fault's rerun must give a file equal to the uninterrupted run: nothing lost, nothing twice.
# Mounting needs root with CAP_SYS_ADMIN: without it the test exits 77 (skipped, with a message).
#   test_batch_faults.sh DIT_CLI SOURCE_DIR
set -euo pipefail
dit=$1
src=$2
h5check="/usr/bin/python3 $src/tests/cluster/h5check.py"
export HDF5_USE_FILE_LOCKING=FALSE

tmp=$(mktemp -d /tmp/dit-batch-faults.XXXXXX)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2> /dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p probe
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=64k tmpfs probe 2> /dev/null; then
  echo "SKIP: mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN); the disk-full and read-only faults need a size-limited and a read-only filesystem"
  exit 77
fi
umount probe

job() {  # job FILE SAMPLES OUTPUT
  cat > "$1" <<TOML
domain = "image"
samples = $2
seed = 23
batch_size = 4
threads = 1
output = "$3"
[sampler]
name = "euler"
steps = ${STEPS:-2}
[image]
classes = [1, 4, 8]
TOML
}

kept_samples() {  # kept_samples REF FILE: checks a file left by a fault, prints its sample count
  if HDF5_USE_FILE_LOCKING=FALSE /usr/bin/python3 -c "import h5py,sys; sys.exit(0 if 'samples/index' in h5py.File(sys.argv[1],'r') else 1)" "$2" 2> /dev/null; then
    $h5check partial "$1" "$2" > check.txt || return 1
    $h5check count "$2"
  else  # no batch yet: it must open, with no per-sample rows anywhere
    /usr/bin/python3 - "$2" > check.txt 2>&1 <<'PY' || return 1
import sys, h5py
rows = []
h5py.File(sys.argv[1], "r").visititems(
    lambda n, o: rows.append((n, o.shape[0])) if isinstance(o, h5py.Dataset) and o.chunks and o.shape[0] else None)
if rows:
    sys.exit(f"{sys.argv[1]}: no /samples/index but rows in {rows}")
PY
    echo 0
  fi
}

one_line_naming() {  # one_line_naming ERRFILE TEXT
  [ "$(wc -l < "$1")" -eq 1 ] || fail "error is not one line: $(cat "$1")"
  grep -q "^dit: error: .*$2" "$1" || fail "error does not name $2: $(cat "$1")"
}

# ---- the uninterrupted reference -----------------------------------------------------------
N=64
job ref.toml $N ref.h5
"$dit" batch ref.toml -q
$h5check same ref.h5 ref.h5 $N > /dev/null
ref_bytes=$(stat -c %s ref.h5)
echo "reference: $N samples, $ref_bytes bytes"

# ---- disk full -------------------------------------------------------------------------------
# A tmpfs of twice the finished file plus 2 MiB; a filler leaves FREE bytes, so the job runs
# out of space at a different point for each level: while creating the file (16 KiB free), then
# with room for 5, 30, 60 and 90% of the output besides the 1 MiB that dit batch reserves ahead
# of each batch (h5md::File::reserve).
mkdir -p full
mount -t tmpfs -o size=$((2 * ref_bytes + 2 * 1048576 + 65536)) tmpfs full
mounts+=("$tmp/full")
disk_full_runs=0
for percent in create 5 30 60 90; do
  if [ "$percent" = create ]; then free=16384; else free=$((1048576 + ref_bytes * percent / 100)); fi
  rm -f full/*
  avail=$(($(stat -f -c '%a*%S' full)))
  head -c $((avail - free)) /dev/zero > full/filler 2> /dev/null || true
  job full/job.toml $N full/out.h5
  if "$dit" batch full/job.toml -q 2> full_err.txt; then
    fail "disk full at $percent%: the job exited 0"
  fi
  one_line_naming full_err.txt "full/out.h5"
  [ ! -e full/out.h5.lock ] || fail "disk full at $percent%: lock file left behind"
  [ ! -e full/out.h5.part ] || fail "disk full at $percent%: the temporary full/out.h5.part left behind"
  n=0
  if [ -e full/out.h5 ]; then
    n=$(kept_samples ref.h5 full/out.h5) || fail "disk full at $percent%: $(cat check.txt)"
  fi
  echo "disk full ($percent): $(cut -c1-200 full_err.txt); $n complete samples kept"
  rm -f full/filler
  "$dit" batch full/job.toml -q 2> resume.txt || fail "rerun after freeing space: $(cat resume.txt)"
  grep -q "$n resumed" resume.txt || fail "rerun did not resume $n samples: $(cat resume.txt)"
  $h5check same ref.h5 full/out.h5 $N > check.txt || fail "after disk full at $percent%: $(cat check.txt)"
  disk_full_runs=$((disk_full_runs + 1))
done

# ---- output not writable ---------------------------------------------------------------------
mkdir -p ro
mount -t tmpfs -o ro,size=64k tmpfs ro
mounts+=("$tmp/ro")
job ro.toml 8 ro/out.h5
if "$dit" batch ro.toml -q 2> ro_err.txt; then fail "job on a read-only filesystem exited 0"; fi
one_line_naming ro_err.txt "ro/out.h5"
grep -qi "read-only" ro_err.txt || fail "read-only error does not say why: $(cat ro_err.txt)"
[ -z "$(ls -A ro)" ] || fail "read-only: something was written: $(ls -A ro)"
echo "read-only filesystem: $(cut -c1-160 ro_err.txt)"

echo "not a folder" > afile
job notdir.toml 8 afile/out.h5
if "$dit" batch notdir.toml -q 2> nd_err.txt; then fail "job with a file as output folder exited 0"; fi
one_line_naming nd_err.txt "afile/out.h5"
[ "$(cat afile)" = "not a folder" ] || fail "the file in place of the folder was changed"
echo "file in place of the output folder: $(cut -c1-160 nd_err.txt)"

# ---- SIGKILL at random points ----------------------------------------------------------------
STEPS=8 job kref.toml 96 kref.h5
start=$(date +%s%N)
"$dit" batch kref.toml -q
duration_ms=$((($(date +%s%N) - start) / 1000000))
RANDOM=8808  # seeded: the same kill times every run on the same machine speed
kills=0
for i in 1 2 3 4 5; do
  delay_ms=$((RANDOM % duration_ms))
  STEPS=8 job kill.toml 96 kill$i.h5
  "$dit" batch kill.toml -q 2> /dev/null &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  n=0
  if [ -e kill$i.h5 ]; then
    n=$(kept_samples kref.h5 kill$i.h5) || fail "after SIGKILL at ${delay_ms} ms: $(cat check.txt)"
  fi
  [ ! -e kill$i.h5.part ] || rm_part=" (and a kill$i.h5.part the rerun replaced)"
  "$dit" batch kill.toml -q 2> resume.txt || fail "rerun after SIGKILL at ${delay_ms} ms: $(cat resume.txt)"
  grep -q "$n resumed" resume.txt || fail "rerun did not resume $n samples: $(cat resume.txt)"
  $h5check same kref.h5 kill$i.h5 96 > check.txt || fail "after SIGKILL at ${delay_ms} ms: $(cat check.txt)"
  echo "SIGKILL at ${delay_ms} of ${duration_ms} ms: $n complete samples kept${rm_part:-}, rerun finished, equal to the uninterrupted run"
  rm_part=""
  kills=$((kills + 1))
done
echo "batch faults: $disk_full_runs disk-full levels, 2 unwritable outputs, $kills SIGKILLs; nothing lost or duplicated"
