#!/usr/bin/python3
"""A DiT in the published format with random weights, for timing the published-checkpoint path
(docs/official-checkpoints.md): the time per image does not depend on the weights.

    /usr/bin/python3 scripts/make-random-dit-pt.py OUT.pt [--size XL] [--input 32]

Saved as facebookresearch/DiT's release is: torch.save(model.state_dict()), learn_sigma=True,
1000 classes, the reference module of apps/bench/dit_reference.py, weights N(0, 0.02)."""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "apps", "bench"))
from dit_reference import DiT  # noqa: E402

SIZES = {"S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16), "XL": (1152, 28, 16)}

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--size", default="XL", choices=sorted(SIZES))
ap.add_argument("--input", type=int, default=32, help="latent side (32: 256x256 images)")
a = ap.parse_args()
hidden, depth, heads = SIZES[a.size]
torch.manual_seed(0)
m = DiT(input_size=a.input, patch_size=2, in_channels=4, hidden_size=hidden, depth=depth,
        num_heads=heads, num_classes=1000, learn_sigma=True)
with torch.no_grad():
    for name, p in m.named_parameters():
        if name != "pos_embed":
            p.normal_(0, 0.02)
torch.save(m.state_dict(), a.out)
print(f"{a.out}: {sum(p.numel() for p in m.parameters()) / 1e6:.1f} M parameters")
