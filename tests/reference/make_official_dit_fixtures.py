#!/usr/bin/python3
"""Parity fixtures for the published-checkpoint path (tests/model/test_official_dit.cpp).

Regenerate (deterministic): cd <repo root> && /usr/bin/python3 tests/reference/make_official_dit_fixtures.py

Needs torch (1.13 or newer) and numpy only. It builds a small DiT in the official format
(apps/bench/dit_reference.py, facebookresearch/DiT models.py's module names; learn_sigma=True, so
8 output channels for 4 latent channels; random non-zero weights, adaLN included) and saves it
twice with torch.save, as the published files are:

  tests/fixtures/official/DiT-tiny.pt   the state dict (epsilon prediction, as DiT-XL-2-256x256.pt)
  tests/fixtures/official/SiT-tiny.pt   the same weights as a training checkpoint
                                         {"model", "ema", "opt", "args": argparse.Namespace}
                                         (SiT's kind: velocity, SiT time)

Hidden size 32 with 2 heads: the reference head rule (head size 64) cannot give the heads of
this width, so the loader needs --heads 2 (the test says so).

Then it samples the DiT with a faithful re-implementation of the official diffusion code
(facebookresearch/DiT diffusion/: gaussian_diffusion.py, respace.py; improved-diffusion's
linear schedule, space_timesteps, learned-range variance, p_sample_loop and ddim_sample_loop
with eta 0, clip_denoised=False) and the official forward_with_cfg (guidance on the first 3
channels, null label = num_classes, the batch doubled as [z, z] and the first half kept), and
the SiT copy with SiT's Euler ODE (s: 0 -> 1, v = model velocity, x += v ds). Noise: the initial
latents z are stored; the per-step noise of DDPM row i comes from a torch.Generator seeded as
dit::sample_generator(seed ^ 0x5344455, i) (src/runtime/rng.cpp, src/model/flow.cpp), so the
engine's DDPM can draw the same noise. Stored in tests/fixtures/official/samples.safetensors:
  z [B,4,8,8], y [B] I64, ddim_50 / ddpm_25 (cfg 4), ddim_20_nocfg (cfg 1), sit_euler_20 (cfg 4)
  and metadata (seed, scales).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "apps", "bench"))
sys.path.insert(0, HERE)
from dit_reference import DiT, save_safetensors  # noqa: E402
from make_dit_fixtures import randomize_  # noqa: E402

SEED = 20261205
SAMPLE_SEED = 42
SDE_STREAM = 0x5344455
CFG = 4.0
BATCH = 3
CONFIG = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=2,
              mlp_ratio=4.0, num_classes=10, learn_sigma=True)
MASK64 = (1 << 64) - 1


def mix_seed(seed, index):  # src/runtime/rng.cpp (SplitMix64 over the pair)
    z = (seed * 0x9E3779B97F4A7C15 + index + 0x632BE59BD9B4E019) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


# ---- the official diffusion (improved-diffusion as facebookresearch/DiT ships it) ------------

def linear_betas(T):
    scale = 1000 / T
    return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)


def space_timesteps(T, count):
    frac_stride = (T - 1) / (count - 1) if count > 1 else 1
    cur, taken = 0.0, []
    for _ in range(count):
        taken.append(round(cur))
        cur += frac_stride
    return set(taken)


def extract(arr, t, shape):  # _extract_into_tensor: float64 table -> float32 values
    res = torch.from_numpy(arr)[t].float()
    while len(res.shape) < len(shape):
        res = res[..., None]
    return res.expand(shape)


class SpacedDiffusion:
    def __init__(self, steps, T=1000):
        base = np.cumprod(1.0 - linear_betas(T), axis=0)
        use = space_timesteps(T, steps)
        last, betas, self.timestep_map = 1.0, [], []
        for i, ac in enumerate(base):
            if i in use:
                betas.append(1 - ac / last)
                last = ac
                self.timestep_map.append(i)
        self.betas = np.array(betas, dtype=np.float64)
        self.num_timesteps = len(betas)
        alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = (self.betas * (1.0 - self.alphas_cumprod_prev) /
                                   (1.0 - self.alphas_cumprod))
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = (self.betas * np.sqrt(self.alphas_cumprod_prev) /
                                     (1.0 - self.alphas_cumprod))
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) /
                                     (1.0 - self.alphas_cumprod))

    def wrapped(self, model):  # _WrappedModel: the model sees the original timesteps
        table = torch.tensor(self.timestep_map, dtype=torch.long)
        return lambda x, t, **kw: model(x, table[t], **kw)

    def p_mean_variance(self, model, x, t, model_kwargs):
        B, C = x.shape[:2]
        out = model(x, t, **model_kwargs)
        eps, var_values = torch.split(out, C, dim=1)
        min_log = extract(self.posterior_log_variance_clipped, t, x.shape)
        max_log = extract(np.log(self.betas), t, x.shape)
        frac = (var_values + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = (extract(self.sqrt_recip_alphas_cumprod, t, x.shape) * x -
              extract(self.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps)
        mean = (extract(self.posterior_mean_coef1, t, x.shape) * x0 +
                extract(self.posterior_mean_coef2, t, x.shape) * x)
        return mean, log_var, x0

    def p_sample_loop(self, model, z, model_kwargs, noise_fn):
        model = self.wrapped(model)
        x = z
        for i in reversed(range(self.num_timesteps)):
            t = torch.tensor([i] * x.shape[0])
            mean, log_var, _ = self.p_mean_variance(model, x, t, model_kwargs)
            noise = noise_fn(x)
            nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
            x = mean + nonzero * torch.exp(0.5 * log_var) * noise
        return x

    def ddim_sample_loop(self, model, z, model_kwargs, noise_fn, eta=0.0):
        model = self.wrapped(model)
        x = z
        for i in reversed(range(self.num_timesteps)):
            t = torch.tensor([i] * x.shape[0])
            _, _, x0 = self.p_mean_variance(model, x, t, model_kwargs)
            eps = ((extract(self.sqrt_recip_alphas_cumprod, t, x.shape) * x - x0) /
                   extract(self.sqrt_recipm1_alphas_cumprod, t, x.shape))
            ab = extract(self.alphas_cumprod, t, x.shape)
            abp = extract(self.alphas_cumprod_prev, t, x.shape)
            sigma = eta * torch.sqrt((1 - abp) / (1 - ab)) * torch.sqrt(1 - ab / abp)
            noise = noise_fn(x)
            mean = x0 * torch.sqrt(abp) + torch.sqrt(1 - abp - sigma ** 2) * eps
            nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
            x = mean + nonzero * sigma * noise
        return x


def forward_with_cfg(model, x, t, y, cfg_scale):  # facebookresearch/DiT models.py
    half = x[: len(x) // 2]
    combined = torch.cat([half, half], dim=0)
    model_out = model(combined, t, y)
    eps, rest = model_out[:, :3], model_out[:, 3:]
    cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
    half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
    eps = torch.cat([half_eps, half_eps], dim=0)
    return torch.cat([eps, rest], dim=1)


def engine_noise(B):
    """randn_like for the doubled batch: row i < B from the engine's per-sample SDE generator."""
    gens = [torch.Generator().manual_seed(mix_seed(SAMPLE_SEED ^ SDE_STREAM, i)) for i in range(B)]

    def draw(x):
        rows = [torch.randn(x.shape[1:], generator=g) for g in gens]
        rows += [torch.zeros(x.shape[1:])] * (x.shape[0] - B)  # the null half: never read
        return torch.stack(rows)
    return draw


def sample_dit(model, z, y, steps, cfg, ddim):
    diffusion = SpacedDiffusion(steps)
    K = CONFIG["num_classes"]
    if cfg > 1.0:  # sample.py: [z, z], labels [y, null], forward_with_cfg, keep the first half
        zz = torch.cat([z, z], 0)
        yy = torch.cat([y, torch.full_like(y, K)], 0)
        fn = lambda x, t, y: forward_with_cfg(model, x, t, y, cfg)  # noqa: E731
        kwargs = dict(y=yy)
    else:
        zz, fn, kwargs = z, (lambda x, t, y: model(x, t, y)), dict(y=y)  # noqa: E731
    loop = diffusion.ddim_sample_loop if ddim else diffusion.p_sample_loop
    out = loop(fn, zz, kwargs, engine_noise(z.shape[0]))
    return out[: z.shape[0]]


def sample_sit_euler(model, z, y, steps, cfg):
    """SiT's ODE in its own time s: 0 (noise) -> 1 (data), v = model(x, s) (first 4 channels,
    SiT's forward drops the sigma channels), CFG on 3 channels as its forward_with_cfg."""
    K, C = CONFIG["num_classes"], CONFIG["in_channels"]
    x = torch.cat([z, z], 0)
    yy = torch.cat([y, torch.full_like(y, K)], 0)
    ds = 1.0 / steps
    for k in range(steps):
        s = torch.full((x.shape[0],), k * ds)
        out = forward_with_cfg(lambda a, b, c: model(a, b, c)[:, :C], x, s, yy, cfg)
        x = x + ds * out
    return x[: z.shape[0]]


def main():
    out_dir = os.path.join(HERE, os.pardir, "fixtures", "official")
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    model = DiT(**CONFIG).eval()
    randomize_(model, gen)
    sd = model.state_dict()
    torch.save(sd, os.path.join(out_dir, "DiT-tiny.pt"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    torch.save({"model": sd, "ema": sd, "opt": opt.state_dict(),
                "args": argparse.Namespace(model="SiT-XL/2", lr=1e-4), "steps": 7},
               os.path.join(out_dir, "SiT-tiny.pt"))

    z = torch.randn((BATCH, 4, 8, 8), generator=gen)
    y = torch.tensor([1, 7, 3], dtype=torch.int64)
    with torch.no_grad():
        io = {"z": z, "y": y,
              "ddim_50": sample_dit(model, z, y, 50, CFG, ddim=True),
              "ddpm_25": sample_dit(model, z, y, 25, CFG, ddim=False),
              "ddim_20_nocfg": sample_dit(model, z, y, 20, 1.0, ddim=True),
              "sit_euler_20": sample_sit_euler(model, z, y, 20, CFG)}
    for k, v in io.items():
        if v.is_floating_point():
            print(f"  {k}: std {v.std().item():.3f}, max |.| {v.abs().max().item():.3f}")
    save_safetensors(os.path.join(out_dir, "samples.safetensors"), io,
                     {"seed": str(SAMPLE_SEED), "cfg_scale": repr(CFG), "heads": "2"})


if __name__ == "__main__":
    main()
