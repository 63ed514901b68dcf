#!/usr/bin/env bash
# Kill and resume: two shards of a job are killed with SIGKILL at a random point after their
# first samples are on disk (shard 0 a direct child, kill -9; shard 1 inside a SLURM job,
# `scancel --batch --signal=KILL`). Each partial file must open with h5py and hold only complete
# samples equal to the unsharded run; rerunning the same commands resumes them; the merge of
# the finished shards equals the unsharded run bit for bit.
#   test_slurm_kill_resume.sh DIT_CLI   exits 77 (skip) without root or slurm
#   DIT_KILL_SEED=S                     replays the random kill points of a failed run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
cluster_require_or_skip
dit_require "${1:-}"
cluster_start

N=${DIT_KILL_SAMPLES:-48}   # 12 batches of 2 per shard
STEPS=16                     # about 0.4 s a batch: room for a kill between batches
seed=${DIT_KILL_SEED:-$(( ($$ ^ $(date +%s%N)) % 32768 ))}
echo "random kill points: DIT_KILL_SEED=$seed"
RANDOM=$seed
mkdir -p "$WORK/ref" "$WORK/run/logs"
write_job "$WORK/ref/job.toml" "$WORK/ref/ref.h5" "$N" 2 $STEPS
write_job "$WORK/run/job.toml" "$WORK/run/out.h5" "$N" 2 $STEPS
out0=$WORK/run/out.shard-0000-of-0002.h5
out1=$WORK/run/out.shard-0001-of-0002.h5

t0=$SECONDS
"$DIT" batch "$WORK/ref/job.toml"
echo "unsharded reference: $((SECONDS - t0)) s"

cat > "$WORK/run/shard1.sbatch" <<EOT
#!/usr/bin/env bash
#SBATCH --job-name=dit-kill-test
#SBATCH --cpus-per-task=1
#SBATCH --time=10
set -euo pipefail
exec "$DIT" batch "$WORK/run/job.toml" --shard 1/2
EOT

samples_in() { $py "$here/h5check.py" count "$1" 2>/dev/null || echo 0; }

wait_for_samples() {  # FILE K TIMEOUT_S: until FILE holds at least K samples
  local t0=$SECONDS
  until [ "$(samples_in "$1")" -ge "$2" ]; do
    [ $((SECONDS - t0)) -lt "$3" ] || fail "$1: fewer than $2 samples after $3 s"
    sleep 0.1
  done
}

# A random kill point: once the file holds K samples (K random, in 1 .. planned / 2, so at
# least half the shard is still to come), wait a random 0..190 ms more (mid-batch or
# mid-write). On a fast machine a shard writes ~17 samples/s and each poll (a Python start)
# adds ~0.2 s, so later or longer kill points could land after the last sample (seen once:
# K = 15 and 330 ms on a 24-sample shard).
planned=$((N / 2))
kill_point() {  # FILE
  local k=$((1 + RANDOM % (planned / 2))) ms=$((RANDOM % 20 * 10))
  echo "  kill once $(basename "$1") holds >= $k samples, then after $ms ms"
  wait_for_samples "$1" "$k" 120
  sleep "0.$(printf '%03d' "$ms")"
}

# Shard 0 as a direct child: kill -9.
"$DIT" batch "$WORK/run/job.toml" --shard 0/2 > "$WORK/run/logs/shard0-first.log" 2>&1 &
pid0=$!
echo "shard 0/2: pid $pid0"
kill_point "$out0"
kill -KILL "$pid0"
rc0=0; wait "$pid0" || rc0=$?
[ "$rc0" -eq 137 ] || fail "shard 0: expected death by SIGKILL (137), got exit $rc0 (finished before the kill?)"
echo "shard 0 killed (exit $rc0)"

# Shard 1 inside a SLURM job: scancel --batch --signal=KILL sends SIGKILL straight to the batch
# step (the script execs dit). Without --batch, scancel turns KILL into a cancel (SIGTERM
# first, which dit answers by finishing its batch): not what this test is about.
job=$(sbatch --parsable -D "$WORK/run" -o "$WORK/run/logs/shard1-%j.log" "$WORK/run/shard1.sbatch")
echo "shard 1/2: SLURM job $job"
kill_point "$out1"
scancel --batch --signal=KILL "$job"
t0=$SECONDS
while state=$(squeue -h -j "$job" -t all -o %T 2>/dev/null) && \
      [[ -z $state || $state =~ ^(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED)$ ]]; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "job $job still $state 60 s after scancel --signal=KILL"
  sleep 0.2
done
echo "shard 1 job $job ended: $state"
[ "$state" != COMPLETED ] || fail "shard 1 completed before the kill"
exit_code=$(scontrol show job "$job" | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p')
[ "$exit_code" = 0:9 ] || fail "shard 1: expected death by signal 9 (ExitCode 0:9), got $exit_code"
! grep -q interrupted "$WORK"/run/logs/shard1-"$job".log || fail "shard 1 saw a soft signal, not SIGKILL"

# The partial files: readable, whole samples only, each equal to the reference.
partial=()
for f in "$out0" "$out1"; do
  k=$(samples_in "$f")
  echo "$f: $k of $planned samples after SIGKILL"
  [ "$k" -gt 0 ] && [ "$k" -lt "$planned" ] || fail "$f: expected a partial shard, holds $k samples"
  $py "$here/h5check.py" partial "$WORK/ref/ref.h5" "$f"
  partial+=("$k")
done

# Resume: the same commands again, shard 1 through SLURM.
job=$(sbatch --parsable -D "$WORK/run" -o "$WORK/run/logs/shard1-%j.log" "$WORK/run/shard1.sbatch")
"$DIT" batch "$WORK/run/job.toml" --shard 0/2 2>&1 | tee "$WORK/run/logs/shard0-resume.log"
cluster_wait "$job" 240
cat "$WORK"/run/logs/shard1-"$job".log

# The reruns resumed: they report the samples already on disk as resumed, not recomputed.
logs=("$WORK/run/logs/shard0-resume.log" "$WORK/run/logs/shard1-$job.log")
for i in 0 1; do
  want="$((planned - partial[i])) of $planned samples written, ${partial[i]} resumed"
  grep -q "$want" "${logs[i]}" || fail "shard $i rerun: expected '$want' in ${logs[i]}"
done
for f in "$out0" "$out1"; do
  $py "$here/h5check.py" partial "$WORK/ref/ref.h5" "$f"
  k=$(samples_in "$f")
  [ "$k" -eq "$planned" ] || fail "$f: $k samples after the resume, expected $planned"
done
"$DIT" merge -o "$WORK/run/merged.h5" "$out0" "$out1"
$py "$here/h5check.py" same "$WORK/ref/ref.h5" "$WORK/run/merged.h5" "$N"
echo "PASS: SIGKILLed shards resumed; merge == unsharded run ($N samples)"
