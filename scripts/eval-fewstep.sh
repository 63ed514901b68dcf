#!/usr/bin/env bash
# The few-step table of docs/few-step.md: each few-step model at 1, 2, 4, 8 NFE against the
# base model (teacher) with euler at 1-64 steps, heun and dopri5, on the same seeds and classifier.
#   scripts/eval-fewstep.sh [PER_CLASS] [SHORTCUT_MODEL] [PROGRESSIVE_MODEL]
# Prints the markdown tables; about 15 minutes at 50 images per class on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DIT=${DIT:-build/dit}
per_class=${1:-50}
shortcut=${2:-runs/fmnist-shortcut/model.safetensors}
progressive=${3:-data/models/fmnist-dit-fewstep.safetensors}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
eval_rows() {  # NAME MODEL ROWS [FLAGS]
  "$DIT" image eval -m "$2" --per-class "$per_class" --rows "$3" -t 1 -o "$tmp/$1.md" "${@:4}" > "$tmp/$1.log" 2>&1
}
# Two processes with one thread each use both cores better than one with two.
eval_rows teacher data/models/fmnist-dit.safetensors \
  euler:1,euler:2,euler:4,euler:8,euler:16,euler:32,euler:50,euler:64,heun:4,heun:8,heun:16,heun:32,dopri5:0 \
  --cfg-scale 3 &  # the guidance scale the students distil (the CLI default for the base model is 2)
teacher=$!
students=(flowmap:1,flowmap:2,flowmap:4,flowmap:8,flowmap-renoise:2,flowmap-renoise:4,flowmap-renoise:8)
[ -f "$shortcut" ] && eval_rows shortcut "$shortcut" "${students[0]}"
[ -f "$progressive" ] && eval_rows progressive "$progressive" "${students[0]}"
wait "$teacher"
for name in teacher shortcut progressive; do
  [ -f "$tmp/$name.md" ] || continue
  echo "### $name"
  echo
  cat "$tmp/$name.md"
  echo
done
