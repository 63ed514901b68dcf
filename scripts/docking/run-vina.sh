#!/usr/bin/env bash
# AutoDock Vina baseline on the RESERVED docking complexes prepared by prepare-complexes.sh.
#   scripts/docking/run-vina.sh DATA_DIR OUT_DIR
# DATA_DIR: output of prepare-complexes.sh (needs index.tsv and <id>/{receptor.pdb,crystal.sdf,ligand.smi,
# box.txt,ligand_start.sdf}). Writes OUT_DIR/<id>/{receptor.pdbqt,ligand.pdbqt,vina_out.pdbqt,vina.log,
# vina_poses.sdf,rmsd.txt,time.txt}, OUT_DIR/vina_results.tsv and OUT_DIR/summary.txt.
# time_s is wall clock around vina; cpu_s is vina's user+sys CPU time (fairer on a shared machine).
# Environment: DIT_DOCK_ONLY=id1,id2 (subset), DIT_DOCK_SPLIT=reserved|dev|all (default reserved),
# VINA_EXHAUSTIVENESS (8), VINA_CPU (2), VINA_SEED (1), VINA_NUM_MODES (9).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DATA_DIR OUT_DIR" >&2
  exit 2
fi
data=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
split=${DIT_DOCK_SPLIT:-reserved}
exh=${VINA_EXHAUSTIVENESS:-8}
cpu=${VINA_CPU:-2}
seed=${VINA_SEED:-1}
nmodes=${VINA_NUM_MODES:-9}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in autodock-vina openbabel python3-rdkit python3-numpy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run-vina: apt-get install ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

ids=$(/usr/bin/python3 "$here/splits.py" "$data/index.tsv" "$split")
if [ -n "${DIT_DOCK_ONLY:-}" ]; then
  ids=$(for i in $ids; do [[ ",$DIT_DOCK_ONLY," == *",$i,"* ]] && echo "$i"; done || true)
fi
[ -n "$ids" ] || { echo "run-vina: no complexes selected" >&2; exit 1; }

{
  echo "# vina $(vina --version 2>&1 | head -1 | sed 's/AutoDock Vina //'); obabel $(obabel -V | awk '{print $3}'); exhaustiveness=$exh cpu=$cpu seed=$seed num_modes=$nmodes"
  echo "# host $(hostname): nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p' | head -1), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/run-info.txt"

res=$out/vina_results.tsv
printf 'id\tn_heavy\tn_rot\ttime_s\tcpu_s\tn_poses\trmsd_per_pose\ttop1_rmsd\tbest_of_top5_rmsd\tvina_score_1\n' > "$res"
for id in $ids; do
  src=$data/$id
  d=$out/$id
  mkdir -p "$d"
  IFS=, read -r cx cy cz sx sy sz < "$src/box.txt"
  obabel "$src/receptor.pdb" -xr -p 7.4 -O "$d/receptor.pdbqt" 2> "$d/obabel-receptor.log"
  obabel "$src/ligand_start.sdf" -O "$d/ligand.pdbqt" 2> "$d/obabel-ligand.log"
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S %e' -o "$d/time.txt" vina --receptor "$d/receptor.pdbqt" --ligand "$d/ligand.pdbqt" \
    --center_x "$cx" --center_y "$cy" --center_z "$cz" --size_x "$sx" --size_y "$sy" --size_z "$sz" \
    --exhaustiveness "$exh" --cpu "$cpu" --seed "$seed" --num_modes "$nmodes" \
    --out "$d/vina_out.pdbqt" > "$d/vina.log" 2>&1 || { echo "run-vina: $id: vina failed (see $d/vina.log)" >&2; continue; }
  t1=$(date +%s.%N)
  time_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  cpu_s=$(awk '{printf "%.1f", $1+$2}' "$d/time.txt")
  /usr/bin/python3 "$here/dockprep.py" poses "$d/vina_out.pdbqt" "$src/ligand.smi" "$d/vina_poses.sdf" --name "$id" 2> "$d/poses.log" || true
  /usr/bin/python3 "$here/rmsd.py" "$src/crystal.sdf" "$d/vina_poses.sdf" > "$d/rmsd.txt"
  read -r nheavy nrot < <(/usr/bin/python3 "$here/dockprep.py" info "$src/crystal.sdf")
  score1=$(awk '/^REMARK VINA RESULT:/{print $4; exit}' "$d/vina_out.pdbqt")
  npose=$(wc -l < "$d/rmsd.txt")
  per=$(paste -sd, "$d/rmsd.txt")
  top1=$(head -1 "$d/rmsd.txt")
  top5=$(head -5 "$d/rmsd.txt" | sort -g | head -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$nheavy" "$nrot" "$time_s" "$cpu_s" "$npose" "$per" "$top1" "$top5" "$score1" >> "$res"
  echo "run-vina: $id heavy=$nheavy rot=$nrot time=${time_s}s cpu=${cpu_s}s top1=$top1 best5=$top5 score=$score1" >&2
done

echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/run-info.txt"
awk -F'\t' 'NR>1 {n++; t+=$4; c+=$5; if ($8!="nan" && $8!="" && $8+0 < 2.0) s1++; if ($9!="nan" && $9!="" && $9+0 < 2.0) s5++}
  END {printf "complexes\t%d\ntop1_success(<2A)\t%d/%d (%.0f%%)\ntop5_success(<2A)\t%d/%d (%.0f%%)\nmean_wall_time_s\t%.1f\nmean_cpu_time_s\t%.1f\n", n, s1, n, 100*s1/n, s5, n, 100*s5/n, t/n, c/n}' "$res" | tee "$out/summary.txt" >&2
