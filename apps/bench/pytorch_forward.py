#!/usr/bin/python3
"""PyTorch-eager baseline for `dit-bench forward`.

The reference DiT (Peebles & Xie 2023, facebookresearch/DiT models.py, module structure and
checkpoint key names; dit_reference.py next to this file, shared with
tests/reference/make_dit_fixtures.py), loaded from a dit-engine safetensors file, timed with the
same protocol as the engine side, results printed as one JSON object on stdout (progress goes to
stderr).

Usage (dit-bench runs this itself; standalone use works too):
  pytorch_forward.py --weights model.safetensors --batch 1,8,32 --threads 4
                     [--warmup 2] [--iters N | --min-time 2.0] [--min-iters 3]
                     [--inputs inputs.safetensors]   # x.B, t.B, y.B per batch + engine_out
                     [--parity-batch B]              # compare against engine_out of that batch

Needs only torch and numpy: the safetensors file is parsed by dit_reference.read_safetensors
(8-byte little-endian header length, JSON header, raw little-endian data).
"""
import argparse
import json
import statistics
import sys
import time

import torch

# From this script's own directory (sys.path[0] when run as a script).
from dit_reference import DiT, read_safetensors


def build_model(weights, metadata, source):
    def meta(key, cast):
        full = "dit." + key
        if full not in metadata:
            raise ValueError(f"{source}: metadata '{full}' is missing (write the file with dit)")
        return cast(metadata[full])

    cfg = dict(
        input_size=meta("input_size", int), patch_size=meta("patch_size", int),
        in_channels=meta("in_channels", int), hidden_size=meta("hidden_size", int),
        depth=meta("depth", int), num_heads=meta("num_heads", int),
        mlp_ratio=meta("mlp_ratio", float), num_classes=meta("num_classes", int),
        learn_sigma=meta("learn_sigma", int) != 0,
    )
    model = DiT(**cfg)
    state = {k: v.to(torch.float32) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, cfg


# ---- timing -------------------------------------------------------------------------------------

def time_runs(fn, warmup, iters, min_time, min_iters):
    """Same protocol as dit-bench: `warmup` untimed calls, then `iters` timed calls, or (iters 0)
    timed calls until their total reaches min_time seconds and at least min_iters were made."""
    for _ in range(warmup):
        fn()
    samples = []
    total = 0.0
    while True:
        start = time.perf_counter()
        fn()
        dt = time.perf_counter() - start
        samples.append(dt * 1e3)
        total += dt
        if iters > 0:
            if len(samples) >= iters:
                break
        elif total >= min_time and len(samples) >= min_iters:
            break
    return samples


def summarize(samples, batch):
    s = sorted(samples)
    median = statistics.median(s)
    return {
        "iters": len(s), "median_ms": median, "min_ms": s[0], "max_ms": s[-1],
        "mean_ms": statistics.fmean(s),
        "stdev_ms": statistics.stdev(s) if len(s) > 1 else 0.0,
        "img_per_s": batch * 1e3 / median, "samples_ms": samples,
    }


def parse_batches(text):
    out = []
    for part in text.split(","):
        b = int(part)
        if b <= 0:
            raise ValueError(f"--batch: sizes must be positive, got {b}")
        out.append(b)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=0, help="0: run until --min-time")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--inputs", help="safetensors with x.B, t.B, y.B (and engine_out)")
    ap.add_argument("--parity-batch", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="inputs when --inputs is absent")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    batches = parse_batches(args.batch)
    weights, metadata = read_safetensors(args.weights)
    model, cfg = build_model(weights, metadata, args.weights)
    inputs = read_safetensors(args.inputs)[0] if args.inputs else {}

    def batch_inputs(b):
        if inputs:
            try:
                return inputs[f"x.{b}"], inputs[f"t.{b}"], inputs[f"y.{b}"]
            except KeyError as e:
                raise ValueError(f"{args.inputs}: tensor {e} is missing") from None
        g = torch.Generator().manual_seed(args.seed + b)
        size, ch = cfg["input_size"], cfg["in_channels"]
        x = torch.randn(b, ch, size, size, generator=g)
        t = torch.rand(b, generator=g) * 1000
        y = torch.randint(0, max(cfg["num_classes"], 1), (b,), generator=g)
        return x, t, y

    result = {
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "config": cfg,
        "results": [],
    }
    with torch.inference_mode():
        if args.parity_batch > 0:
            if "engine_out" not in inputs:
                raise ValueError("--parity-batch needs --inputs with an engine_out tensor")
            ref = inputs["engine_out"].to(torch.float32)
            out = model(*batch_inputs(args.parity_batch))
            if out.shape != ref.shape:
                raise ValueError(f"parity: pytorch output {list(out.shape)} vs engine "
                                 f"{list(ref.shape)}")
            diff = (out - ref).abs()
            result["parity"] = {
                "batch": args.parity_batch,
                "max_abs_diff": diff.max().item(),
                "mean_abs_diff": diff.mean().item(),
                "max_abs_output": out.abs().max().item(),
                "rms_output": out.pow(2).mean().sqrt().item(),
            }
        for b in batches:
            x, t, y = batch_inputs(b)
            samples = time_runs(lambda: model(x, t, y), args.warmup, args.iters, args.min_time,
                                args.min_iters)
            r = {"batch": b, **summarize(samples, b)}
            print(f"pytorch batch {b}: {r['iters']} iters, median {r['median_ms']:.2f} ms",
                  file=sys.stderr, flush=True)
            result["results"].append(r)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError, RuntimeError) as e:
        print(f"pytorch_forward.py: error: {e}", file=sys.stderr)
        sys.exit(1)
