#!/usr/bin/env bash
# `dit batch` on a real (private, local) SLURM: the same job unsharded and as a 4-task job
# array, merged with `dit merge`, must hold every sample exactly once, bit-identical to the
# unsharded run. Also: merge refuses a missing or a duplicated shard.
#   test_slurm_batch.sh DIT_CLI        exits 77 (skip) without root or slurm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
cluster_require_or_skip
dit_require "${1:-}"
cluster_start

N=16
mkdir -p "$WORK/ref" "$WORK/array/logs"
write_job "$WORK/ref/job.toml" "$WORK/ref/ref.h5" $N
write_job "$WORK/array/job.toml" "$WORK/array/out.h5" $N

t0=$SECONDS
"$DIT" batch "$WORK/ref/job.toml"
echo "unsharded run: $((SECONDS - t0)) s"
[ -f "$WORK/ref/ref.h5" ] || fail "unsharded run wrote no $WORK/ref/ref.h5"

# The array: each task runs the plain command; the shard comes from SLURM_ARRAY_TASK_ID/COUNT.
cat > "$WORK/array/task.sbatch" <<EOT
#!/usr/bin/env bash
#SBATCH --job-name=dit-batch-test
#SBATCH --cpus-per-task=1
#SBATCH --time=10
#SBATCH --output=$WORK/array/logs/%A_%a.log
set -euo pipefail
echo "task \$SLURM_ARRAY_TASK_ID of \$SLURM_ARRAY_TASK_COUNT on \$(hostname)"
exec "$DIT" batch "$WORK/array/job.toml"
EOT
t0=$SECONDS
job=$(sbatch --parsable --array=0-3 -D "$WORK/array" "$WORK/array/task.sbatch")
echo "submitted array job $job"
cluster_wait "$job" 240
echo "array: $((SECONDS - t0)) s"
for f in "$WORK"/array/logs/*.log; do echo "--- $f"; cat "$f"; done

shards=()
for i in 0 1 2 3; do
  f=$WORK/array/out.shard-000$i-of-0004.h5
  [ -f "$f" ] || fail "task $i wrote no $f (files: $(ls "$WORK/array"))"
  shards+=("$f")
done
[ ! -e "$WORK/array/out.h5" ] || fail "a sharded run wrote the unsharded name out.h5"

"$DIT" merge -o "$WORK/array/merged.h5" "${shards[@]}"
$py "$here/h5check.py" same "$WORK/ref/ref.h5" "$WORK/array/merged.h5" $N

# merge must refuse a missing shard and a duplicated one, and leave no output behind.
if "$DIT" merge -o "$WORK/array/missing.h5" "${shards[@]:0:3}" 2> "$WORK/err"; then
  fail "merge of 3 of 4 shards succeeded"
fi
echo "merge without shard 3 failed as it should: $(cat "$WORK/err")"
[ ! -e "$WORK/array/missing.h5" ] || fail "failed merge left missing.h5 behind"
if "$DIT" merge -o "$WORK/array/dup.h5" "${shards[@]}" "${shards[1]}" 2> "$WORK/err"; then
  fail "merge with shard 1 twice succeeded"
fi
echo "merge with shard 1 twice failed as it should: $(cat "$WORK/err")"
[ ! -e "$WORK/array/dup.h5" ] || fail "failed merge left dup.h5 behind"
echo "PASS: 4-task SLURM array + merge == unsharded run ($N samples)"
