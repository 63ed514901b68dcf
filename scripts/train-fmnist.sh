#!/usr/bin/env bash
# Recipe for the bundled Fashion-MNIST model (data/models/fmnist-dit.safetensors).
# Resumable: rerun with --resume to continue from runs/fmnist/checkpoint.safetensors.
#   [STEPS=N] scripts/train-fmnist.sh [--resume] [extra dit image train flags]
# Measured on the 2-core development machine: 0.7-1.1 s/step at batch 64 with 1 thread
# (55 min for the last 3730 steps). The bundled model came from this recipe run in three legs
# (0-299 with --steps 5000, 299-771 with --steps 3000, 771-4500 with --steps 4500, each leg
# resuming the last), so its cosine schedule differed slightly between steps 300 and 771 from a
# single run of this script; with the same thread count a single run is deterministic.
# A fourth leg then continued it: `STEPS=8500 scripts/train-fmnist.sh --resume -t 1` (the cosine
# schedule restarted at 1.6e-4 and decayed toward 8500), stopped with SIGINT at step 7692
# (lr 3.6e-5; 1 h 54 min at 1.0-2.1 s/step on the shared machine). A fifth leg (2026-12-06)
# continued those EMA weights for 8000 steps with a fresh optimizer and schedule:
#   build/dit image train --config fmnist --dataset fashion-mnist -o runs/fmnist2 \
#     --init data/models/fmnist-dit.safetensors --steps 8000 -b 64 --lr 2e-4 --lr-schedule cosine \
#     --warmup 200 --ema 0.9995 --t-sampling logit-normal --label-dropout 0.1 --grad-clip 1.0 \
#     --seed 1 --checkpoint-every 250 --storage f16 -t 1
# (1 h 50 min at 1.2 it/s). The bundled model is its final EMA weights (f16).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIT=${DIT:-$BUILD/dit}
exec "$DIT" image train --config fmnist --dataset fashion-mnist -o runs/fmnist \
  --steps "${STEPS:-4500}" -b 64 --lr 3e-4 --lr-schedule cosine --warmup 300 --ema 0.9995 \
  --t-sampling logit-normal --label-dropout 0.1 --grad-clip 1.0 --seed 0 \
  --checkpoint-every 250 --storage f16 "$@"
