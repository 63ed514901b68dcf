#!/usr/bin/python3
"""PyTorch baseline for `dit-bench forward`: eager, and torch.compile with --compile.

The reference DiT (Peebles & Xie 2023, facebookresearch/DiT models.py, module structure and
checkpoint key names; dit_reference.py next to this file, shared with
tests/reference/make_dit_fixtures.py), loaded from a dit-engine safetensors file, timed with the
same protocol as the engine side, results printed as one JSON object on stdout (progress goes to
stderr).

Usage (dit-bench runs this itself; standalone use works too):
  pytorch_forward.py --weights model.safetensors --batch 1,8,32 --threads 4
                     [--warmup 3] [--warmup-time 2.0] [--iters N | --min-time 2.0] [--min-iters 5]
                     [--inputs inputs.safetensors]   # x.B, t.B, y.B per batch + engine_out
                     [--parity-batch B]              # compare against engine_out of that batch
                     [--device cpu|cuda] [--dtype f32|bf16|fp16] [--compile]

On a GPU (--device cuda) attention is F.scaled_dot_product_attention (timm's fused_attn, so
torch picks its flash / cuDNN / memory-efficient kernels), every timed call ends with
torch.cuda.synchronize(), and --compile also times torch.compile(model) (default mode; the
compile happens in the warm-up calls and its time is reported).

Needs only torch and numpy: the safetensors file is parsed by dit_reference.read_safetensors
(8-byte little-endian header length, JSON header, raw little-endian data).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# From this script's own directory (sys.path[0] when run as a script).
from dit_reference import Attention, DiT, read_safetensors

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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

def time_runs(fn, warmup, iters, min_time, min_iters, warmup_time=0.0):
    """Same protocol as dit-bench: untimed calls until at least `warmup` were made and they took
    at least `warmup_time` seconds (the steady state), then `iters` timed calls, or (iters 0)
    timed calls until their total reaches min_time seconds and at least min_iters were made.
    Returns the timed samples and the seconds the warm-up took."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_time:
        fn()
        done += 1
    warmup_s = time.perf_counter() - start
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
    return samples, warmup_s


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
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--warmup-time", type=float, default=2.0,
                    help="warm up for at least this many seconds (and --warmup calls)")
    ap.add_argument("--iters", type=int, default=0, help="0: run until --min-time")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--inputs", help="safetensors with x.B, t.B, y.B (and engine_out)")
    ap.add_argument("--parity-batch", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="inputs when --inputs is absent")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no GPU")
    if args.compile and not hasattr(torch, "compile"):
        raise RuntimeError(f"--compile: torch {torch.__version__} has no torch.compile")
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    batches = parse_batches(args.batch)
    weights, metadata = read_safetensors(args.weights)
    model, cfg = build_model(weights, metadata, args.weights)
    model = model.to(device, dtype)
    Attention.fused = args.device == "cuda" and hasattr(F, "scaled_dot_product_attention")
    inputs = read_safetensors(args.inputs)[0] if args.inputs else {}
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def batch_inputs(b):
        if inputs:
            try:
                x, t, y = inputs[f"x.{b}"], inputs[f"t.{b}"], inputs[f"y.{b}"]
            except KeyError as e:
                raise ValueError(f"{args.inputs}: tensor {e} is missing") from None
        else:
            g = torch.Generator().manual_seed(args.seed + b)
            size, ch = cfg["input_size"], cfg["in_channels"]
            x = torch.randn(b, ch, size, size, generator=g)
            t = torch.rand(b, generator=g) * 1000
            y = torch.randint(0, max(cfg["num_classes"], 1), (b,), generator=g)
        return x.to(device, dtype), t.to(device), y.to(device)

    result = {
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "dtype": args.dtype,
        "attention": "F.scaled_dot_product_attention" if Attention.fused else "explicit softmax",
        "config": cfg,
        "results": [],
    }
    compiled = torch.compile(model) if args.compile else None
    if compiled is not None:
        result["compiled"] = []
    with torch.inference_mode():
        if args.parity_batch > 0:
            if "engine_out" not in inputs:
                raise ValueError("--parity-batch needs --inputs with an engine_out tensor")
            ref = inputs["engine_out"].to(torch.float32)
            out = model(*batch_inputs(args.parity_batch)).to("cpu", torch.float32)
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
            for name, fn in [("results", model), ("compiled", compiled)]:
                if fn is None:
                    continue

                def call():
                    fn(x, t, y)
                    sync()

                samples, warmup_s = time_runs(call, max(args.warmup, 1 if fn is compiled else 0),
                                              args.iters, args.min_time, args.min_iters,
                                              args.warmup_time)
                r = {"batch": b, **summarize(samples, b), "warmup_s": warmup_s}
                print(f"pytorch {'compiled' if fn is compiled else 'eager'} batch {b}: "
                      f"{r['iters']} iters, median {r['median_ms']:.2f} ms "
                      f"(warm-up {warmup_s:.1f} s)", file=sys.stderr, flush=True)
                result[name].append(r)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError, RuntimeError) as e:
        print(f"pytorch_forward.py: error: {e}", file=sys.stderr)
        sys.exit(1)
