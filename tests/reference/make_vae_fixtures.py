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
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "apps", "bench"))
from dit_reference import save_safetensors  # noqa: E402
from vae_reference import AutoencoderKL, randomize_  # noqa: E402

SEED = 20240815
SAMPLE_SEED = 1234
CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
              layers_per_block=2, norm_num_groups=4, scaling_factor=0.18215)


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
