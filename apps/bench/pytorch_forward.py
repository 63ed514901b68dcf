#!/usr/bin/python3
"""PyTorch-eager baseline for `dit-bench forward`.

A DiT with the module structure of the reference implementation (Peebles & Xie 2023,
facebookresearch/DiT models.py, with timm's Attention / Mlp / PatchEmbed written inline since
timm is not required), loaded from a dit-engine safetensors file, timed with the same protocol
as the engine side, results printed as one JSON object on stdout (progress goes to stderr).

Usage (dit-bench runs this itself; standalone use works too):
  pytorch_forward.py --weights model.safetensors --batch 1,8,32 --threads 4
                     [--warmup 2] [--iters N | --min-time 2.0] [--min-iters 3]
                     [--inputs inputs.safetensors]   # x.B, t.B, y.B per batch + engine_out
                     [--parity-batch B]              # compare against engine_out of that batch

Needs only torch and numpy: the safetensors file is parsed here (8-byte little-endian header
length, JSON header, raw little-endian data).
"""
import argparse
import json
import math
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors ----------------------------------------------------------------------------

_NP_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("u1"), "BF16": np.dtype("<u2"),
}


def read_safetensors(path):
    """Returns ({name: torch.Tensor}, {metadata})."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, entry in header.items():
        dtype_name = entry["dtype"]
        if dtype_name not in _NP_DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dtype_name}")
        dt = _NP_DTYPES[dtype_name]
        begin, end = entry["data_offsets"]
        shape = list(entry["shape"])
        count = math.prod(shape) if shape else 1
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor '{name}' has inconsistent offsets")
        arr = np.frombuffer(data[begin:end], dtype=dt, count=count).reshape(shape)
        if dtype_name == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dtype_name == "BOOL":
            arr = arr.astype(bool)
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, metadata


# ---- reference DiT (models.py) with timm's layers inline --------------------------------------

def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):  # timm.models.vision_transformer.PatchEmbed (flatten, no norm)
    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size,
                              bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # BCHW -> BNC


class Attention(nn.Module):  # timm Attention (qkv_bias=True, no q/k norm, no dropout)
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):  # timm Mlp with GELU(approximate="tanh"), drop 0
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
        ).to(device=t.device)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):  # inference path only (no label dropout)
    def __init__(self, num_classes, hidden_size):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, labels):
        return self.embedding_table(labels)


class DiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                 mlp_ratio, num_classes, learn_sigma):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        # The reference always has a y_embedder; dit-engine drops it when num_classes == 0.
        self.y_embedder = LabelEmbedder(num_classes, hidden_size) if num_classes > 0 else None
        num_patches = (input_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList(
            [DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)

    def unpatchify(self, x):
        c = self.out_channels
        p = self.patch_size
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]
        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(shape=(x.shape[0], c, h * p, h * p))

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t)
        if self.y_embedder is not None:
            c = c + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)
        return self.unpatchify(x)


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
