#!/usr/bin/env bash
# The protein evaluation table of docs/protein.md: sample N backbones per length with the model,
# then scripts/protein/eval.py writes the table (model, real held-out chains, random-walk
# baseline) with `dit check` pass rates, mkdssp composition, Rg, TMalign diversity and novelty.
#   scripts/protein/eval-model.sh OUT_DIR [MODEL] [N] [SEED]   (needs chains.h5: scripts/protein/prepare.py)
# `dit protein sample`'s defaults (trace guidance, secondary-structure strings, compactness,
# Ramachandran restraint, polish); SEED 7 by default (the tuning seed: pass a fresh one to evaluate).
set -euo pipefail
out=${1:?usage: eval-model.sh OUT_DIR [MODEL] [N] [SEED]}
model=${2:-data/models/protein-dit.safetensors}
n=${3:-10}
seed=${4:-7}
dit=${DIT:-build/dit}
data=${DATA:-/work/protein-data/chains.h5}
lengths=50,75,100,125,150
mkdir -p "$out"
# Relaxed (what users get) and raw (the model's trace, rebuilt, no OpenMM relaxation).
"$dit" protein sample -m "$model" --length $lengths -n "$n" -o "$out/relaxed" --h5 "$out/relaxed.h5" \
    --steps 100 --seed "$seed" -q > "$out/relaxed.txt"
"$dit" protein sample -m "$model" --length $lengths -n "$n" -o "$out/raw" --steps 100 --seed "$seed" --no-relax -q \
    > "$out/raw.txt"
/usr/bin/python3 scripts/protein/eval.py --samples "$out/relaxed" --lengths $lengths --data "$data" \
    --out "$out/table.md" --dit "$dit" -n "$n" --ss-h5 "$out/relaxed.h5"
/usr/bin/python3 scripts/protein/eval.py --samples "$out/raw" --lengths $lengths --data "$data" \
    --out "$out/table-raw.md" --dit "$dit" -n "$n" --no-real --no-baseline --novelty-ref 20
