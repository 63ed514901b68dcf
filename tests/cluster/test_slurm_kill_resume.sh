#!/usr/bin/env bash
# Kill and resume: two shards of a job are killed with SIGKILL at a random point after their
# first samples are on disk (shard 1 inside a SLURM job with `scancel --signal=KILL`, shard 0 a
# direct child with kill -9). Each partial file must open with h5py and hold only complete
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

N=${DIT_KILL_SAMPLES:-40}
seed=${DIT_KILL_SEED:-$(( ($$ ^ $(date +%s%N)) % 32768 ))}
echo "random kill points: DIT_KILL_SEED=$seed"
RANDOM=$seed
mkdir -p "$WORK/ref" "$WORK/run/logs"
write_job "$WORK/ref/job.toml" "$WORK/ref/ref.h5" "$N"
write_job "$WORK/run/job.toml" "$WORK/run/out.h5" "$N"
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

wait_for_samples() {  # FILE TIMEOUT_S: until FILE holds at least one sample
  local t0=$SECONDS
  until [ "$(samples_in "$1")" -gt 0 ]; do
    [ $((SECONDS - t0)) -lt "$2" ] || fail "$1: no sample written after $2 s"
    sleep 0.2
  done
}

random_pause() {  # 0.0 .. 1.9 s
  local ms=$((RANDOM % 20 * 100))
  echo "  pausing ${ms} ms before the kill"
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# Shard 1 in SLURM, shard 0 as a direct child, at the same time.
job=$(sbatch --parsable -D "$WORK/run" -o "$WORK/run/logs/shard1-%j.log" "$WORK/run/shard1.sbatch")
echo "shard 1/2: SLURM job $job"
"$DIT" batch "$WORK/run/job.toml" --shard 0/2 > "$WORK/run/logs/shard0-first.log" 2>&1 &
pid0=$!
echo "shard 0/2: pid $pid0"

wait_for_samples "$out0" 120
random_pause
kill -KILL "$pid0"
rc0=0; wait "$pid0" || rc0=$?
[ "$rc0" -eq 137 ] || fail "shard 0: expected death by SIGKILL (137), got exit $rc0 (finished before the kill? raise DIT_KILL_SAMPLES)"
echo "shard 0 killed (exit $rc0)"

wait_for_samples "$out1" 120
random_pause
scancel --full --signal=KILL "$job"
t0=$SECONDS
while state=$(squeue -h -j "$job" -t all -o %T 2>/dev/null) && \
      [[ -z $state || $state =~ ^(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED)$ ]]; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "job $job still $state 60 s after scancel --signal=KILL"
  sleep 0.2
done
echo "shard 1 job $job ended: $state"
[ "$state" != COMPLETED ] || fail "shard 1 completed before the kill (raise DIT_KILL_SAMPLES)"

# The partial files: readable, whole samples only, each equal to the reference.
for f in "$out0" "$out1"; do
  k=$(samples_in "$f")
  echo "$f: $k of $((N / 2)) samples after SIGKILL"
  [ "$k" -gt 0 ] && [ "$k" -lt $((N / 2)) ] || fail "$f: expected a partial shard, holds $k samples"
  $py "$here/h5check.py" partial "$WORK/ref/ref.h5" "$f"
done

# Resume: the same commands again, shard 1 through SLURM.
job=$(sbatch --parsable -D "$WORK/run" -o "$WORK/run/logs/shard1-%j.log" "$WORK/run/shard1.sbatch")
"$DIT" batch "$WORK/run/job.toml" --shard 0/2 2>&1 | tee "$WORK/run/logs/shard0-resume.log"
cluster_wait "$job" 240
cat "$WORK"/run/logs/shard1-"$job".log

for f in "$out0" "$out1"; do
  $py "$here/h5check.py" partial "$WORK/ref/ref.h5" "$f"
  k=$(samples_in "$f")
  [ "$k" -eq $((N / 2)) ] || fail "$f: $k samples after the resume, expected $((N / 2))"
done
"$DIT" merge -o "$WORK/run/merged.h5" "$out0" "$out1"
$py "$here/h5check.py" same "$WORK/ref/ref.h5" "$WORK/run/merged.h5" "$N"
echo "PASS: SIGKILLed shards resumed; merge == unsharded run ($N samples)"
