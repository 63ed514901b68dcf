#!/usr/bin/python3
"""PyTorch parity fixtures for the Stable Diffusion VAE (tests/domains/vae_test.cpp).

Regenerate (deterministic: fixed seed, the same bytes on every run with the same torch/numpy):

    cd <repo root> && /usr/bin/python3 tests/reference/make_vae_fixtures.py

It needs torch (1.13 or newer) and numpy only (diffusers is not needed: the model below is
written from diffusers' source, v0.30: models/autoencoders/vae.py Encoder/Decoder,
models/autoencoders/autoencoder_kl.py AutoencoderKL, models/unets/unet_2d_blocks.py
DownEncoderBlock2D/UpDecoderBlock2D/UNetMidBlock2D, models/resnet.py ResnetBlock2D/Upsample2D/
Downsample2D, models/attention_processor.py Attention + AttnProcessor; DiagonalGaussian-
Distribution in vae.py), with the same module names, so its state dict has diffusers' keys.
It writes:

  tests/fixtures/vae_tiny_weights.safetensors
      a small AutoencoderKL (CONFIG below: 3 levels, so the decoder upsamples x4, 2 resnets per
      encoder block and 3 per decoder block, 4 groups), every tensor stored as F16 (the model
      computes in float32 with exactly those F16-representable values, so the fp32 parity is
      unaffected by the storage dtype); __metadata__ {"vae.norm_num_groups": "4",
      "vae.scaling_factor": "0.18215"}. Attention keys use the current names
      (to_q, to_k, to_v, to_out.0); the C++ test derives the old-name variant (query, key,
      value, proj_attn) and a 1x1-conv-shaped variant from it.
  tests/fixtures/vae_tiny_io.safetensors (F32)
      latents [2,4,8,8] in DiT scale (N(0,1), i.e. already multiplied by the scaling factor),
      decoded = decoder(post_quant_conv(latents / scaling_factor)) [2,3,32,32] (not clamped);
      images [2,3,32,32] in [-1,1], posterior_mean and posterior_logvar [2,4,8,8] (raw: mean and
      clamped log-variance of quant_conv(encoder(images))), encoded = posterior_mean *
      scaling_factor, encoded_sample = (posterior_mean + exp(logvar / 2) * randn) * scaling_factor
      with randn = torch.randn([2,4,8,8], generator=torch.Generator().manual_seed(SAMPLE_SEED)).

All parameters are RANDOMISED (GroupNorm affine too), so every block contributes visibly.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "apps", "bench"))
from dit_reference import save_safetensors  # noqa: E402

SEED = 20240815
SAMPLE_SEED = 1234
CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
              layers_per_block=2, norm_num_groups=4, scaling_factor=0.18215)
EPS = 1e-6  # every GroupNorm of the VAE


# ---- the model (diffusers' names) ------------------------------------------------------------


class ResnetBlock2D(nn.Module):
    """temb None, output_scale_factor 1: shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))."""

    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        # use_in_shortcut = in_channels != out_channels; a 1x1 conv.
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))  # dropout 0
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Attention(nn.Module):
    """One head over all channels (attention_head_dim = channels), residual connection."""

    def __init__(self, channels, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x):
        B, C, H, W = x.shape
        residual = x
        h = self.group_norm(x).view(B, C, H * W).transpose(1, 2)  # [B, N, C]
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        probs = torch.softmax(q @ k.transpose(1, 2) * C ** -0.5, dim=-1)  # [B, N, N]
        h = self.to_out[0](probs @ v)  # [B, N, C]
        h = h.transpose(1, 2).reshape(B, C, H, W)
        return h + residual  # rescale_output_factor 1


class Downsample2D(nn.Module):
    """padding 0: pad (0, 1, 0, 1) with zeros, then a 3x3 conv with stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class Upsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownEncoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, add_downsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, groups) for i in range(layers)])
        if add_downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(cout)])
        else:
            self.downsamplers = None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.downsamplers is not None:
            for d in self.downsamplers:
                x = d(x)
        return x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, cin, cout, layers, groups, add_upsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, groups) for i in range(layers)])
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(cout)])
        else:
            self.upsamplers = None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.upsamplers is not None:
            for u in self.upsamplers:
                x = u(x)
        return x


class UNetMidBlock2D(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.attentions = nn.ModuleList([Attention(channels, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups),
                                      ResnetBlock2D(channels, channels, groups)])

    def forward(self, x):
        x = self.resnets[0](x)
        x = self.attentions[0](x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    def __init__(self, in_channels, latent_channels, block_out_channels, layers_per_block, groups):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        out = block_out_channels[0]
        for i, ch in enumerate(block_out_channels):
            cin, out = out, ch
            self.down_blocks.append(DownEncoderBlock2D(
                cin, out, layers_per_block, groups,
                add_downsample=i != len(block_out_channels) - 1))
        self.mid_block = UNetMidBlock2D(block_out_channels[-1], groups)
        self.conv_norm_out = nn.GroupNorm(groups, block_out_channels[-1], eps=EPS)
        self.conv_out = nn.Conv2d(block_out_channels[-1], 2 * latent_channels, 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, latent_channels, out_channels, block_out_channels, layers_per_block,
                 groups):
        super().__init__()
        rev = list(reversed(block_out_channels))
        self.conv_in = nn.Conv2d(latent_channels, rev[0], 3, padding=1)
        self.mid_block = UNetMidBlock2D(rev[0], groups)
        self.up_blocks = nn.ModuleList()
        out = rev[0]
        for i, ch in enumerate(rev):
            prev, out = out, ch
            self.up_blocks.append(UpDecoderBlock2D(
                prev, out, layers_per_block + 1, groups, add_upsample=i != len(rev) - 1))
        self.conv_norm_out = nn.GroupNorm(groups, block_out_channels[0], eps=EPS)
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, 3, padding=1)

    def forward(self, z):
        x = self.conv_in(z)
        x = self.mid_block(x)
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, in_channels, out_channels, latent_channels, block_out_channels,
                 layers_per_block, norm_num_groups, scaling_factor):
        super().__init__()
        self.scaling_factor = scaling_factor
        self.encoder = Encoder(in_channels, latent_channels, block_out_channels,
                               layers_per_block, norm_num_groups)
        self.decoder = Decoder(latent_channels, out_channels, block_out_channels,
                               layers_per_block, norm_num_groups)
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)

    def posterior(self, images):
        """DiagonalGaussianDistribution(quant_conv(encoder(x))): (mean, clamped logvar)."""
        moments = self.quant_conv(self.encoder(images))
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


# ---- randomised weights ----------------------------------------------------------------------


def randomize_(model, gen):
    """Conv/linear weights ~ N(0, 1/fan_in) (attention projections: N(0, 4/fan_in)), biases
    ~ N(0, 0.1^2), GroupNorm weights 1 + N(0, 0.2^2) and biases N(0, 0.2^2); all rounded to
    float16-representable values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = "norm" in name.split(".")[-2]
            if is_norm and name.endswith(".weight"):
                value = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif is_norm:
                value = 0.2 * torch.randn(p.shape, generator=gen)
            elif name.endswith(".bias"):
                value = 0.1 * torch.randn(p.shape, generator=gen)
            else:
                # The attention's projections 2x larger: a peaked softmax and a visible
                # contribution next to the residual.
                gain = 2.0 if ".attentions." in name else 1.0
                value = gain * torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel())
            p.copy_(value.half().float())


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    model = AutoencoderKL(**CONFIG).eval()
    randomize_(model, gen)
    sf = CONFIG["scaling_factor"]
    latent = CONFIG["latent_channels"]
    down = 2 ** (len(CONFIG["block_out_channels"]) - 1)

    latents = torch.randn((2, latent, 8, 8), generator=gen)
    images = torch.rand((2, CONFIG["in_channels"], 8 * down, 8 * down), generator=gen) * 2 - 1
    with torch.no_grad():
        decoded = model.decode(latents / sf)
        mean, logvar = model.posterior(images)
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        sample = mean + torch.exp(0.5 * logvar) * noise

        # How much the attention matters (a parity test that passes without it proves little).
        h = model.decoder.mid_block.resnets[0](model.decoder.conv_in(model.post_quant_conv(
            latents / sf)))
        a = model.decoder.mid_block.attentions[0](h)
        print(f"  decoder attention: |out - in| / |in| = {((a - h).norm() / h.norm()).item():.3f}")
    print(f"  decoded {list(decoded.shape)}: std {decoded.std().item():.3f}, max |.| "
          f"{decoded.abs().max().item():.3f}")
    print(f"  encoded mean {list(mean.shape)}: std {(mean * sf).std().item():.4f}, max |.| "
          f"{(mean * sf).abs().max().item():.4f}; logvar in [{logvar.min().item():.2f}, "
          f"{logvar.max().item():.2f}]")

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    weights = {k: v.half() for k, v in model.state_dict().items()}
    assert all(torch.equal(weights[k].float(), v) for k, v in model.state_dict().items())
    meta = {"vae.norm_num_groups": str(CONFIG["norm_num_groups"]),
            "vae.scaling_factor": repr(sf)}
    wpath = os.path.join(out_dir, "vae_tiny_weights.safetensors")
    save_safetensors(wpath, weights, meta)
    io = {"latents": latents, "decoded": decoded, "images": images, "posterior_mean": mean,
          "posterior_logvar": logvar, "encoded": mean * sf, "encoded_sample": sample * sf}
    iopath = os.path.join(out_dir, "vae_tiny_io.safetensors")
    save_safetensors(iopath, io, {**meta, "sample_seed": str(SAMPLE_SEED)})
    params = sum(v.numel() for v in weights.values())
    print(f"wrote {wpath} ({params} parameters, {os.path.getsize(wpath) / 1024:.0f} KiB) and "
          f"{iopath} ({os.path.getsize(iopath) / 1024:.0f} KiB), torch {torch.__version__}")


if __name__ == "__main__":
    sys.exit(main())
