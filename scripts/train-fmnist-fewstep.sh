#!/usr/bin/env bash
# Recipes for the few-step Fashion-MNIST models, both fine-tuned from the bundled base model
# (data/models/fmnist-dit.safetensors) with guidance scale 3 distilled in.
#   scripts/train-fmnist-fewstep.sh shortcut|progressive [--resume] [extra dit image train flags]
# Output: runs/fmnist-<method>/{checkpoint,model}.safetensors (OUT= overrides). Resumable like the base recipe
# (rerun with --resume; the progressive round teacher is stored in the checkpoint).
#   shortcut    no teacher: flow matching + self-consistency (Frans et al. 2024), step sizes
#               1 .. 1/32, targets at 1/64 from the model's own guided velocity.
#   progressive distils the base model: rounds of 8, 4, 2, 1 steps (Salimans & Ho 2022), the
#               first round's teacher being the base model at 16 guided Euler steps.
# STEPS=, ROUND_STEPS=, BATCH=, OUT= override the recipe. Measured on the 2-core VM, one thread
# each, both running at once with builds beside them: shortcut 4.0-4.3 s/step at batch 64,
# progressive 3.5 s/step at batch 32. The bundled data/models/fmnist-dit-fewstep.safetensors is
# this recipe's progressive default (STEPS=1600, ROUND_STEPS=400) at BATCH=32, -t 1 (16 min
# alone on a core), with --init pointing at the base model's step-5250 EMA export of its
# 2026-12-06 continuation (the line below, with `--init` changed; docs/few-step.md); an
# earlier one was ROUND_STEPS=150 STEPS=600 BATCH=32 (34 min under load); the shortcut model in docs/few-step.md is the default recipe stopped (SIGINT) at
# step 842 (57 min).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIT=${DIT:-$BUILD/dit}
method=${1:?usage: $0 shortcut|progressive [--resume] [flags]}
shift
common=(image train --config fmnist --dataset fashion-mnist --init data/models/fmnist-dit.safetensors
        -o "${OUT:-runs/fmnist-$method}" -b "${BATCH:-64}" --lr 1e-4 --lr-schedule constant --warmup 50 --ema 0.995
        --grad-clip 1.0 --seed 0 --checkpoint-every 100 --storage f16 --distill-guidance 3)
case "$method" in
  shortcut)
    exec "$DIT" "${common[@]}" --objective shortcut --steps "${STEPS:-3000}" \
      --shortcut-min-steps 64 --bootstrap-fraction 0.25 --label-dropout 0.1 "$@" ;;
  progressive)
    exec "$DIT" "${common[@]}" --objective progressive --steps "${STEPS:-1600}" \
      --distill-rounds 8,4,2,1 --round-steps "${ROUND_STEPS:-400}" --replay-fraction 0.25 "$@" ;;
  *) echo "unknown method '$method' (shortcut or progressive)" >&2; exit 2 ;;
esac
