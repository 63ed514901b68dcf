#!/usr/bin/env bash
# Smoke test of the private SLURM cluster: a 4-task job array whose tasks record their
# SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT. Exits 77 (skip) without slurm or root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
cluster_require_or_skip
cluster_start

out=$WORK/out
mkdir -p "$out"
cat > "$WORK/task.sh" <<'EOF'
#!/usr/bin/env bash
echo "$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT $SLURM_ARRAY_TASK_MIN" > "$1/task-$SLURM_ARRAY_TASK_ID"
EOF
chmod +x "$WORK/task.sh"

t0=$SECONDS
job=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --time=5 -J smoke -D "$WORK" \
  -o "$out/%A_%a.log" "$WORK/task.sh" "$out")
echo "submitted array job $job"
cluster_wait "$job" 120
echo "array finished in $((SECONDS - t0)) s"

for i in 0 1 2 3; do
  [ -f "$out/task-$i" ] || fail "task $i wrote nothing; logs: $(cat "$out"/*.log 2>/dev/null)"
  got=$(cat "$out/task-$i")
  [ "$got" = "$i 4 0" ] || fail "task $i wrote '$got', expected '$i 4 0'"
done
n=$(ls "$out" | grep -c '^task-')
[ "$n" -eq 4 ] || fail "expected 4 task files, found $n"
echo "PASS: 4 array tasks ran with SLURM_ARRAY_TASK_ID 0..3, SLURM_ARRAY_TASK_COUNT 4"
