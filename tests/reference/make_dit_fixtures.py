#!/usr/bin/python3
"""PyTorch parity fixtures for the DiT backbone (tests/model/test_dit_parity.cpp).

Regenerate (deterministic: fixed seed, the same bytes on every run with the same torch/numpy):

    cd <repo root> && /usr/bin/python3 tests/reference/make_dit_fixtures.py

It needs torch (1.13 or newer) and numpy only: no timm, no safetensors package (a small
safetensors writer is below). It writes, for each config in CONFIGS:

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

The model below re-implements facebookresearch/DiT models.py (Peebles & Xie 2023) with the
same module names; timm's PatchEmbed / Attention / Mlp are written inline. All parameters are
RANDOMISED (the reference initialisation zeroes the adaLN modulation and the final layer, which
makes every block the identity and the output zero: a parity test against that proves nothing).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

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

# ---- reference DiT (facebookresearch/DiT models.py) ---------------------------------------


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):  # timm.layers.PatchEmbed with flatten=True, norm=Identity
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size,
                              bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, N, D]


class Attention(nn.Module):  # timm Attention(dim, num_heads, qkv_bias=True), no qk norm
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, H, N, Dh]
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


class LabelEmbedder(nn.Module):
    # Eval mode only (no label dropout); num_classes + 1 rows: the last is the CFG null class.
    def __init__(self, num_classes, hidden_size):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)
        self.num_classes = num_classes

    def forward(self, labels):
        return self.embedding_table(labels)


class DiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(hidden_size, 6 * hidden_size, bias=True))

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
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28,
                 num_heads=16, mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
        super().__init__()
        self.learn_sigma = learn_sigma
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        num_patches = self.x_embedder.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size),
                                      requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio=mlp_ratio)
                                     for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1],
                                            int(self.x_embedder.num_patches ** 0.5))
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))

    def unpatchify(self, x):
        c = self.out_channels
        p = self.x_embedder.patch_size[0]
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]
        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum('nhwpqc->nchpwq', x)
        return x.reshape(shape=(x.shape[0], c, h * p, h * p))

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed  # [B, N, D]
        c = self.t_embedder(t) + self.y_embedder(y)  # [B, D]
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)  # [B, N, p*p*out]
        return self.unpatchify(x)  # [B, out, H, W]


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)
    grid = grid.reshape([2, 1, grid_size, grid_size])
    return get_2d_sincos_pos_embed_from_grid(embed_dim, grid)


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    return np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.
    omega = 1. / 10000 ** omega  # (D/2,)
    pos = pos.reshape(-1)  # (M,)
    out = np.einsum('m,d->md', pos, omega)  # (M, D/2)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, D)


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


# ---- safetensors writer ------------------------------------------------------------------------

DTYPES = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2"),
          torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}


def save_safetensors(path, tensors, metadata=None):
    """[u64 LE header length][JSON header, space-padded to a multiple of 8][raw LE data].

    Data ordered by element size (largest first), then name, so every tensor is aligned."""
    items = []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        code, np_dtype = DTYPES[t.dtype]
        data = t.numpy().astype(np_dtype, copy=False).tobytes()
        items.append((-t.element_size(), name, code, list(t.shape), data))
    items.sort()
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for _, name, code, shape, data in items:
        header[name] = {"dtype": code, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


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
