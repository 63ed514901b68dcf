#!/usr/bin/python3
"""PyTorch parity fixtures for the DiT backbone (tests/model/test_dit_parity.cpp).

Regenerate (deterministic: fixed seed, the same bytes on every run with the same torch/numpy):

    cd <repo root> && /usr/bin/python3 tests/reference/make_dit_fixtures.py

It needs torch (1.13 or newer) and numpy only: no timm, no safetensors package (a small
safetensors writer is in apps/bench/dit_reference.py). It writes, for each config in CONFIGS:

  tests/fixtures/dit_<name>_weights.safetensors
      the state dict under the reference key names (pos_embed, x_embedder.proj.*,
      t_embedder.mlp.{0,2}.*, y_embedder.embedding_table.weight, blocks.<i>.attn.{qkv,proj}.*,
      blocks.<i>.mlp.{fc1,fc2}.*, blocks.<i>.adaLN_modulation.1.*,
      final_layer.{linear,adaLN_modulation.1}.*), __metadata__ {"dit.num_heads": "<h>"}.
      pos_embed is stored as F32 (the exact sin-cos table); every other tensor is stored as F16
      to keep the committed files small. The model computes in float32 with exactly those
      F16-representable values, so the fp32 parity is unaffected by the storage dtype.
  tests/fixtures/dit_<name>_io.safetensors
      x [B,C,H,W] F32, t [B] F32 (reference timestep unit: 0 .. 999), y [B] I64 (the last one is
      the null class id = num_classes), out = model(x, t, y) [B, out_channels, H, W],
      cfg_out: classifier-free guidance at scale CFG_SCALE, cond and uncond run as one batch of
      2B, v = v_u + s (v_c - v_u) on the first C (= in_channels) output channels, the other
      channels from the conditional output;
      pos_embed_ref [N, D] (get_2d_sincos_pos_embed in float64, as numpy computes it, cast to
      F32), t_freq_<dim> [B, dim] (TimestepEmbedder.timestep_embedding of t, dim 256 and odd 9);
      metadata: the config as "dit.<field>" strings (DiTConfig::to_metadata layout).

The model is apps/bench/dit_reference.py (shared with the dit-bench PyTorch baseline), which
re-implements facebookresearch/DiT models.py (Peebles & Xie 2023) with the same module names;
timm's PatchEmbed / Attention / Mlp are written inline. All parameters are
RANDOMISED (the reference initialisation zeroes the adaLN modulation and the final layer, which
makes every block the identity and the output zero: a parity test against that proves nothing).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "apps", "bench"))
from dit_reference import (DiT, TimestepEmbedder, get_2d_sincos_pos_embed,  # noqa: E402
                           save_safetensors)

SEED = 20240607
CFG_SCALE = 2.5
BATCH = 3

# name -> DiT kwargs (the reference constructor arguments).
CONFIGS = {
    "tiny": dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2,
                 num_heads=4, mlp_ratio=4.0, num_classes=10, learn_sigma=True),
    "fmnist_small": dict(input_size=28, patch_size=4, in_channels=1, hidden_size=96, depth=3,
                         num_heads=3, mlp_ratio=4.0, num_classes=10, learn_sigma=False),
}

# ---- randomised weights --------------------------------------------------------------------


def randomize_(model, gen):
    """Every parameter but pos_embed ~ N(0, std^2), rounded to float16-representable values.

    Weights: std 1/sqrt(fan_in) (0.0625 .. 0.25 here); biases: std 0.1; label table: std 0.5.
    These keep activations O(1), so the adaLN gates (~0.3-1) make every block and the final
    layer contribute visibly to the output.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "pos_embed":
                continue
            if name.endswith("embedding_table.weight"):
                std = 0.5
            elif name.endswith(".bias"):
                std = 0.1
            else:
                fan_in = p[0].numel()  # Linear [out, in], Conv2d [out, C, p, p]
                std = 1.0 / math.sqrt(fan_in)
            p.copy_((torch.randn(p.shape, generator=gen) * std).half().float())


# ---- fixtures --------------------------------------------------------------------------------


def config_metadata(cfg):
    return {"dit.input_size": str(cfg["input_size"]), "dit.patch_size": str(cfg["patch_size"]),
            "dit.in_channels": str(cfg["in_channels"]),
            "dit.hidden_size": str(cfg["hidden_size"]), "dit.depth": str(cfg["depth"]),
            "dit.num_heads": str(cfg["num_heads"]), "dit.mlp_ratio": repr(cfg["mlp_ratio"]),
            "dit.num_classes": str(cfg["num_classes"]),
            "dit.learn_sigma": "1" if cfg["learn_sigma"] else "0"}


def make(name, cfg, gen, out_dir):
    model = DiT(**cfg).eval()
    randomize_(model, gen)
    C, S, K = cfg["in_channels"], cfg["input_size"], cfg["num_classes"]

    x = torch.randn((BATCH, C, S, S), generator=gen)
    t = torch.tensor([0.0, 250.5, 999.0])
    y = torch.tensor([3, 7, K], dtype=torch.int64)  # the last one: the null class
    with torch.no_grad():
        out = model(x, t, y)
        # Classifier-free guidance: cond and uncond as one batch of 2B.
        both = model(torch.cat([x, x]), torch.cat([t, t]),
                     torch.cat([y, torch.full_like(y, K)]))
        v_c, v_u = both[:BATCH], both[BATCH:]
        guided = v_u[:, :C] + CFG_SCALE * (v_c[:, :C] - v_u[:, :C])
        cfg_out = torch.cat([guided, v_c[:, C:]], dim=1)

        # How much each piece matters (a parity test on near-identity blocks proves little).
        tokens = model.x_embedder(x) + model.pos_embed
        c = model.t_embedder(t) + model.y_embedder(y)
        for i, block in enumerate(model.blocks):
            new = block(tokens, c)
            print(f"  block {i}: |out - in| / |in| = "
                  f"{((new - tokens).norm() / tokens.norm()).item():.3f}")
            tokens = new
        print(f"  out: shape {list(out.shape)}, std {out.std().item():.3f}, "
              f"max |.| {out.abs().max().item():.3f}; cfg_out max |.| "
              f"{cfg_out.abs().max().item():.3f}")

    weights = {}
    for key, value in model.state_dict().items():
        weights[key] = value.float() if key == "pos_embed" else value.half()
    assert all(torch.equal(weights[k].float(), v) for k, v in model.state_dict().items())
    save_safetensors(os.path.join(out_dir, f"dit_{name}_weights.safetensors"), weights,
                     {"dit.num_heads": str(cfg["num_heads"])})

    grid = S // cfg["patch_size"]
    io = {"x": x, "t": t, "y": y, "out": out, "cfg_out": cfg_out,
          "pos_embed_ref": torch.from_numpy(
              get_2d_sincos_pos_embed(cfg["hidden_size"], grid)).float(),
          "t_freq_256": TimestepEmbedder.timestep_embedding(t, 256),
          "t_freq_9": TimestepEmbedder.timestep_embedding(t, 9)}
    meta = config_metadata(cfg)
    meta["cfg_scale"] = repr(CFG_SCALE)
    save_safetensors(os.path.join(out_dir, f"dit_{name}_io.safetensors"), io, meta)


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    for name, cfg in CONFIGS.items():
        gen = torch.Generator().manual_seed(SEED + sum(map(ord, name)))
        print(f"dit_{name}: {cfg}")
        make(name, cfg, gen, out_dir)
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)
                if f.startswith("dit_") and f.endswith(".safetensors"))
    print(f"wrote {out_dir}/dit_*.safetensors ({total / 1024:.0f} KiB), torch {torch.__version__}")


if __name__ == "__main__":
    sys.exit(main())
