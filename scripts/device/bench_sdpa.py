#!/usr/bin/env python3
"""PyTorch baseline for `dit-cuda-selftest bench`: torch.nn.functional.scaled_dot_product_attention
TFLOP/s with the FlashAttention and cuDNN backends, at the same shapes, dtypes and timing protocol
(3 warmup calls, median of 25 calls timed with CUDA events, flops = 4 B H N^2 D).

Run on a GPU machine with a CUDA PyTorch 2.x: python3 scripts/device/bench_sdpa.py
"""
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# (B, H, N, D), as dit-cuda-selftest bench
SHAPES = [(64, 16, 256, 72), (64, 16, 256, 64), (16, 16, 1024, 72), (8, 16, 4096, 128)]
BACKENDS = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
DTYPES = [("bf16", torch.bfloat16), ("fp16", torch.float16)]


def median_ms(fn, warmup=3, runs=25):
    for _ in range(warmup):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    stops = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for start, stop in zip(starts, stops):
        start.record()
        fn()
        stop.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(stop) for start, stop in zip(starts, stops))


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return 77
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    for dtype_name, dtype in DTYPES:
        for B, H, N, D in SHAPES:
            q, k, v = (torch.rand(B, H, N, D, device="cuda", dtype=dtype) * 2 - 1 for _ in range(3))
            flops = 4.0 * B * H * N * N * D
            for backend_name, backend in BACKENDS:
                label = f"sdpa {backend_name} {dtype_name} B={B:<3d} H={H} N={N:<5d} D={D:<3d}"
                try:
                    with sdpa_kernel(backend):
                        ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v))
                    print(f"{label} {ms:8.3f} ms {flops / ms * 1e-9:7.1f} TFLOP/s")
                except RuntimeError as e:  # the backend does not take these inputs
                    print(f"{label} unsupported: {str(e).splitlines()[0][:100]}")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
