#!/usr/bin/python3
"""PyTorch-eager baseline for `dit-bench protein` / `crystal`: dit::TokenDiT in plain PyTorch.

The token DiT of src/model/token_dit.cpp, from a dit-engine safetensors file with the token.*
metadata (save_flow_net / save_protein_model / save_crystal_model): per-token features and the
state go through one linear `x_embedder` (input [features, x], or with K =
token.periodic_frequencies > 0 [features, x, sin(2 pi k x), cos(2 pi k x)], the angles of every
state number for k = 1..K, number-major: (x.unsqueeze(-1) * k).flatten(-2)), then with
token.chain_neighbours = K > 0, for offsets k = -K..-1, 1..K in that order, [x[i+k] - x[i],
|x[i+k] - x[i]|, 1] where token i+k exists and is unmasked with token i, zeros otherwise; with
token.periodic_pairs = K > 0 (and token.pair_channels P, token.global_tokens G) the state of
tokens i >= G is zeroed and each gains the mean over the other real tokens j >= G of
[sin, cos](2 pi k (x_j - x_i)) (k = 1..K, number-major) outer pair_embedder(features_j) [P]
(flattened angle-major), zeros for the first G tokens; the condition c =
t_embedder(t * 1000) (+ y_embedder(labels): a LabelEmbedder table of num_classes + 1 rows, the
last the null class) (+ cond_embedder(cond)); the same adaLN-Zero DiTBlock and FinalLayer as the
reference DiT (dit_reference.py: LayerNorm eps 1e-6 without affine, modulate x (1 + scale) +
shift, shift/scale/gate chunk order, GELU tanh); attention with a key-padding mask (scores of
padded keys set to -inf before the softmax) when the batch has padding, none otherwise (as the
engine); the output multiplied by the mask. No context tokens and no step conditioning (protein
and crystal models have neither; other files are refused). Eval and inference_mode only.

Usage (dit-bench protein and dit-bench crystal run this themselves):
  pytorch_token_forward.py --weights w.safetensors --inputs inputs.safetensors --threads N
                           [--warmup 3] [--warmup-time 2.0] [--iters N | --min-time 2.0] [--min-iters 5]
inputs.safetensors holds, for the prefixes "timed." (the batch that is timed) and "mixed." (a
batch of mixed lengths, compared only): x [B, N, Cx], t [B] in [0, 1], features [B, N, F],
mask [B, N] (int64, 1 = real), cond [B, K], engine_out [B, N, Cx], and labels [B] (int64) for
models with num_classes > 0 (crystals: space group - 1, or num_classes, the null class, for any
space group). Prints one JSON object
(parity of both batches, the timing of "timed.", the process's peak RSS) on stdout.
"""
import argparse
import json
import math
import resource
import sys

import torch
import torch.nn as nn

# From this script's own directory (sys.path[0] when run as a script).
from dit_reference import Attention, DiTBlock, FinalLayer, LabelEmbedder, TimestepEmbedder, \
    modulate, read_safetensors
from pytorch_forward import summarize, time_runs


def masked_attention(attn, x, key_mask):
    """Attention of dit_reference (explicit softmax) with the engine's key-padding mask."""
    B, N, C = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # [B, H, N, Dh]
    scores = (q @ k.transpose(-2, -1)) * attn.scale  # [B, H, N, N]
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = scores.softmax(dim=-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(B, N, C))


def block_forward(block, x, c, key_mask):
    """dit_reference.DiTBlock.forward with the key mask passed to the attention."""
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
        block.adaLN_modulation(c).chunk(6, dim=1)
    x = x + gate_msa.unsqueeze(1) * masked_attention(
        block.attn, modulate(block.norm1(x), shift_msa, scale_msa), key_mask)
    x = x + gate_mlp.unsqueeze(1) * block.mlp(modulate(block.norm2(x), shift_mlp, scale_mlp))
    return x


def chain_neighbour_features(x, mask, K):
    """[B, N, 2K (C + 2)]: TokenDiTImpl's chain-neighbour inputs (offsets -K..-1, 1..K)."""
    B, N, C = x.shape
    present = mask.to(x.dtype)
    parts = []
    for k in [*range(-K, 0), *range(1, K + 1)]:
        f = torch.zeros(B, N, C + 2, dtype=x.dtype)
        n = N - abs(k)
        if n > 0:
            i = slice(0, n) if k > 0 else slice(-k, N)       # token i
            j = slice(k, N) if k > 0 else slice(0, n)        # token i + k
            exists = (present[:, i] * present[:, j]).unsqueeze(-1)
            delta = (x[:, j] - x[:, i]) * exists
            length = torch.sqrt((delta ** 2).sum(-1, keepdim=True) + 1e-12) * exists
            f[:, i] = torch.cat([delta, length, exists], -1)
        parts.append(f)
    return torch.cat(parts, -1)


def periodic_pair_features(x, mask, e, K, G):
    """TokenDiTConfig::periodic_pairs: [B, N, 2 C K P] (vectorised: what the forward times)."""
    B, N, C = x.shape
    out = torch.zeros(B, N, 2 * C * K * e.shape[2], dtype=x.dtype)
    A = N - G
    if A < 1:
        return out
    f = x[:, G:]
    k = torch.arange(1, K + 1, dtype=x.dtype) * (2 * math.pi)
    angle = ((f.unsqueeze(1) - f.unsqueeze(2)).unsqueeze(-1) * k).flatten(-2)  # [B, i, j, C K]: x_j - x_i
    pf = torch.cat([torch.sin(angle), torch.cos(angle)], -1)
    present = mask[:, G:].to(x.dtype)
    w = present.unsqueeze(1) * (1 - torch.eye(A, dtype=x.dtype))  # j real, j != i
    count = w.sum(-1, keepdim=True).clamp_min(1)
    agg = torch.einsum("bija,bij,bjp->biap", pf, w, e[:, G:])
    out[:, G:] = (agg / count.unsqueeze(-1)).flatten(-2) * present.unsqueeze(-1)
    return out


def periodic_pair_features_loops(x, mask, e, K, G):
    """The same with loops over the atoms: checks the vectorised version once per run."""
    B, N, C = x.shape
    P = e.shape[2]
    out = torch.zeros(B, N, 2 * C * K * P, dtype=x.dtype)
    k = torch.arange(1, K + 1, dtype=x.dtype) * (2 * math.pi)
    for b in range(B):
        real = [j for j in range(G, N) if bool(mask[b, j])]
        for i in real:
            others = [j for j in real if j != i]
            if not others:
                continue
            acc = torch.zeros(2 * C * K, P, dtype=x.dtype)
            for j in others:
                angle = ((x[b, j] - x[b, i]).unsqueeze(-1) * k).flatten()  # [C K]
                acc += torch.outer(torch.cat([torch.sin(angle), torch.cos(angle)]), e[b, j])
            out[b, i] = (acc / len(others)).flatten()
    return out


class TokenDiT(nn.Module):
    def __init__(self, state_dim, token_features, cond_features, num_classes, hidden_size, depth,
                 num_heads, mlp_ratio, periodic_frequencies=0, chain_neighbours=0,
                 periodic_pairs=0, pair_channels=8, global_tokens=0):
        super().__init__()
        self.x_embedder = nn.Linear(token_features + state_dim * (1 + 2 * periodic_frequencies)
                                    + 2 * chain_neighbours * (state_dim + 2)
                                    + 2 * state_dim * periodic_pairs * pair_channels, hidden_size)
        self.pair_embedder = nn.Linear(token_features, pair_channels) if periodic_pairs > 0 else None
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size) if num_classes > 0 else None
        self.cond_embedder = nn.Linear(cond_features, hidden_size) if cond_features > 0 else None
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio=mlp_ratio)
                                     for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, 1, state_dim)  # patch 1: Linear(D, Cx)
        self.token_features = token_features
        self.periodic_frequencies = periodic_frequencies
        self.chain_neighbours = chain_neighbours
        self.periodic_pairs = periodic_pairs
        self.global_tokens = global_tokens

    def forward(self, x, t, features, mask, cond, labels=None):
        N = x.shape[1]
        state = x
        if self.periodic_frequencies > 0:
            # [x, sin(2 pi k x), cos(2 pi k x) for k = 1..K], as TokenDiTImpl::flow
            k = torch.arange(1, self.periodic_frequencies + 1, dtype=x.dtype) * (2 * math.pi)
            angle = (x.unsqueeze(-1) * k).flatten(-2)  # [B, N, Cx K]
            state = torch.cat([x, torch.sin(angle), torch.cos(angle)], -1)
        if self.chain_neighbours > 0:
            state = torch.cat([state, chain_neighbour_features(x, mask, self.chain_neighbours)], -1)
        if self.periodic_pairs > 0:
            state = state.clone()
            state[:, self.global_tokens:] = 0  # differences only for the non-global tokens
            e = self.pair_embedder(features.to(x.dtype))
            state = torch.cat([state, periodic_pair_features(x, mask, e, self.periodic_pairs,
                                                             self.global_tokens)], -1)
        if self.token_features > 0:
            state = torch.cat([features.to(x.dtype), state], -1)
        tokens = self.x_embedder(state)  # [B, N, D]
        c = self.t_embedder(t * 1000.0)  # [B, D]; kTimestepScale
        if self.y_embedder is not None:
            if labels is None:
                raise ValueError("the model has labels (token.num_classes > 0): inputs need labels")
            c = c + self.y_embedder(labels)
        if self.cond_embedder is not None:
            c = c + self.cond_embedder(cond.to(x.dtype))
        key_mask = None if bool(mask.all()) else mask  # the engine passes no mask without padding
        for block in self.blocks:
            tokens = block_forward(block, tokens, c, key_mask)
        out = self.final_layer(tokens[:, :N], c)  # [B, N, Cx]
        return out * mask.unsqueeze(-1).to(out.dtype)


def build_model(weights, metadata, source):
    def meta(key, cast):
        full = "token." + key
        if full not in metadata:
            raise ValueError(f"{source}: metadata '{full}' is missing (not a token DiT file)")
        return cast(metadata[full])

    if metadata.get("dit.kind") != "token":
        raise ValueError(f"{source}: dit.kind is not 'token'")
    if meta("context_features", int) != 0 or meta("step_conditioning", int) != 0:
        raise ValueError(f"{source}: context tokens and step conditioning are not implemented here")
    cfg = dict(state_dim=meta("state_dim", int), token_features=meta("token_features", int),
               cond_features=meta("cond_features", int), num_classes=meta("num_classes", int),
               hidden_size=meta("hidden_size", int), depth=meta("depth", int),
               num_heads=meta("num_heads", int), mlp_ratio=meta("mlp_ratio", float),
               # files written before periodic states existed have none
               periodic_frequencies=int(metadata.get("token.periodic_frequencies", 0)),
               chain_neighbours=int(metadata.get("token.chain_neighbours", 0)),
               # nor periodic pairs
               periodic_pairs=int(metadata.get("token.periodic_pairs", 0)),
               pair_channels=int(metadata.get("token.pair_channels", 8)),
               global_tokens=int(metadata.get("token.global_tokens", 0)))
    model = TokenDiT(**cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()}, strict=True)
    model.eval()
    return model, cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--warmup-time", type=float, default=2.0)
    ap.add_argument("--iters", type=int, default=0, help="0: run until --min-time")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-iters", type=int, default=5)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    weights, metadata = read_safetensors(args.weights)
    model, cfg = build_model(weights, metadata, args.weights)
    inputs = read_safetensors(args.inputs)[0]

    def batch(prefix):
        try:
            return [inputs[prefix + k] for k in ("x", "t", "features", "mask", "cond")] + \
                [inputs.get(prefix + "labels"), inputs[prefix + "engine_out"]]
        except KeyError as e:
            raise ValueError(f"{args.inputs}: tensor {e} is missing") from None

    result = {"torch_version": torch.__version__, "python": sys.version.split()[0],
              "threads": torch.get_num_threads(), "config": cfg, "parity": []}
    with torch.inference_mode():
        for name in ("timed", "mixed"):
            x, t, features, mask, cond, labels, ref = batch(name + ".")
            out = model(x, t, features, mask.bool(), cond, labels)
            if out.shape != ref.shape:
                raise ValueError(f"parity {name}: pytorch output {list(out.shape)} vs engine "
                                 f"{list(ref.shape)}")
            diff = (out - ref.to(torch.float32)).abs()
            result["parity"].append({
                "name": f"{name} batch {list(x.shape[:2])}"
                        f"{'' if bool(mask.all()) else ', padded'}",
                "max_abs_diff": diff.max().item(), "mean_abs_diff": diff.mean().item(),
                "max_abs_output": out.abs().max().item(),
                "rms_output": out.pow(2).mean().sqrt().item()})
        if model.periodic_pairs > 0:  # the vectorised pair inputs against the loops, mixed batch
            x, _, features, mask, _, _, _ = batch("mixed.")
            e = model.pair_embedder(features.to(x.dtype))
            args_ = (x, mask.bool(), e, model.periodic_pairs, model.global_tokens)
            result["pair_inputs_vs_loops"] = (periodic_pair_features(*args_) -
                                              periodic_pair_features_loops(*args_)).abs().max().item()
            if result["pair_inputs_vs_loops"] > 1e-4:
                raise ValueError(f"periodic pair inputs: vectorised and loops differ by "
                                 f"{result['pair_inputs_vs_loops']}")
        x, t, features, mask, cond, labels, _ = batch("timed.")
        mask = mask.bool()
        samples, warmup_s = time_runs(lambda: model(x, t, features, mask, cond, labels), args.warmup,
                                      args.iters, args.min_time, args.min_iters, args.warmup_time)
        r = summarize(samples, x.shape[0])
        r["warmup_s"] = warmup_s
        result["result"] = r
        print(f"pytorch eager forward {list(x.shape)}: {r['iters']} iters, median "
              f"{r['median_ms']:.2f} ms", file=sys.stderr, flush=True)
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError, RuntimeError) as e:
        print(f"pytorch_token_forward.py: error: {e}", file=sys.stderr)
        sys.exit(1)
