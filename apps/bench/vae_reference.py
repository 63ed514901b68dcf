"""A PyTorch re-implementation of diffusers' AutoencoderKL (Encoder / Decoder with the diffusers
key names), written from diffusers' source (models/autoencoders/vae.py, unets/unet_2d_blocks.py,
resnet.py, attention_processor.py). Used by tests/reference/make_vae_fixtures.py (parity
fixtures) and apps/bench/pytorch_vae.py (the `dit-bench vae` baseline)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

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
