#!/usr/bin/python3
"""PyTorch baseline for `dit-bench vae`: the SD VAE decoder (diffusers AutoencoderKL architecture,
apps/bench/vae_reference.py) in PyTorch eager, on random weights that it also writes for the
engine (safetensors, diffusers key names), with the same latents.

Builds the VAE of --block-out-channels / --layers-per-block / --groups (default: the
sd-vae-ft-* config), randomises it (seeded; the values do not change the time), writes
--weights and --io (tensor "latents" [B, 4, S, S] in DiT scale and "images", its decode),
then times decode(latents / 0.18215) with the protocol of dit-bench (warm-up calls and seconds,
then --iters timed calls) and prints one JSON object: median / min / max ms, threads, version.
"""
import argparse
import json
import sys

import torch

from dit_reference import save_safetensors
from pytorch_forward import summarize, time_runs
from vae_reference import AutoencoderKL, randomize_

SCALE = 0.18215


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--io", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--latent", type=int, default=32, help="latent side (32: 256x256 images)")
    ap.add_argument("--block-out-channels", default="128,256,512,512")
    ap.add_argument("--layers-per-block", type=int, default=2)
    ap.add_argument("--groups", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--warmup-time", type=float, default=2.0)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    blocks = tuple(int(c) for c in args.block_out_channels.split(","))
    vae = AutoencoderKL(3, 3, 4, blocks, args.layers_per_block, args.groups, SCALE).eval()
    gen = torch.Generator().manual_seed(args.seed)
    randomize_(vae, gen)
    save_safetensors(args.weights, {k: v.contiguous() for k, v in vae.state_dict().items()},
                     {"vae.norm_num_groups": str(args.groups), "vae.scaling_factor": repr(SCALE)})
    latents = torch.randn((args.batch, 4, args.latent, args.latent), generator=gen)
    z = latents / SCALE
    if args.channels_last:
        vae = vae.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    result = {}

    def decode():
        result["images"] = vae.decode(z)

    with torch.inference_mode():
        samples, warmup_s = time_runs(decode, args.warmup, args.iters, 0.0, 1, args.warmup_time)
    save_safetensors(args.io, {"latents": latents, "images": result["images"].contiguous()})
    r = summarize(samples, args.batch)
    r["warmup_s"] = warmup_s
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "python": sys.version.split()[0], "decode": r,
                      "channels_last": args.channels_last}))


if __name__ == "__main__":
    main()
