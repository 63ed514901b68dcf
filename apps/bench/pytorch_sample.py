#!/usr/bin/python3
"""PyTorch baseline for `dit-bench cli`: the sampling loop of `dit image sample`, in PyTorch eager.

The reference DiT (dit_reference.py) on the weights of a dit-engine safetensors file, sampling
`--batch` images with Euler over `--steps` uniform steps from t = 1 (noise) to t = 0 (data), with
classifier-free guidance exactly as the engine does it: conditional and unconditional halves in
one batch of 2B (null class = num_classes), v = v_u + s (v_c - v_u) on the first in_channels
output channels (the engine's time convention: v = eps - x0, the network gets t * 1000).
Warmed up (whole loops until --warmup loops and --warmup-time seconds), then --repeats timed
loops; prints one JSON object: median / min / max ms per loop, and the samples' mean and std.
Only the loop is timed: interpreter start-up, `import torch` and loading the weights are not
(this is the "warmed-up PyTorch eager loop" of docs/performance.md).
"""
import argparse
import json
import sys
import time

import torch

from dit_reference import read_safetensors
from pytorch_forward import build_model, summarize, time_runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cfg-scale", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--warmup-time", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    weights, metadata = read_safetensors(args.weights)
    model, cfg = build_model(weights, metadata, args.weights)
    C, S, K = cfg["in_channels"], cfg["input_size"], cfg["num_classes"]
    B = args.batch
    y = torch.arange(B) % max(K, 1)
    y_in = torch.cat([y, torch.full_like(y, K)])
    gen = torch.Generator().manual_seed(args.seed)
    result = {}

    def loop():
        x = torch.randn(B, C, S, S, generator=gen)
        for i in range(args.steps):
            t, t_next = 1.0 - i / args.steps, 1.0 - (i + 1) / args.steps
            tt = torch.full((2 * B,), t * 1000.0)
            out = model(torch.cat([x, x]), tt, y_in)[:, :C]
            v_c, v_u = out[:B], out[B:]
            v = v_u + args.cfg_scale * (v_c - v_u) if args.cfg_scale != 1.0 else v_c
            x = x + (t_next - t) * v
        result["x"] = x

    with torch.inference_mode():
        samples, warmup_s = time_runs(loop, args.warmup, args.repeats, 0.0, 1, args.warmup_time)
    r = summarize(samples, B)
    r["warmup_s"] = warmup_s
    x = result["x"]
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "python": sys.version.split()[0], "config": cfg, "batch": B,
                      "steps": args.steps, "cfg_scale": args.cfg_scale, "loop": r,
                      "sample_mean": x.mean().item(), "sample_std": x.std().item()}))


if __name__ == "__main__":
    main()
