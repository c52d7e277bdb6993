"""Does bf16 pay on this CPU? A convolution's forward + backward under bf16 autocast against fp32.

``--mixed-precision bf16`` is 1.6-2x faster per training step on a CPU with native bf16 (AVX512-BF16
or AMX; the README's throughput table, an Intel Xeon) and many times slower on one without it, where
PyTorch emulates bf16 (an AMD EPYC with AVX2 only). train.py warns in that case; this prints the
measured ratio and the CPU flags PyTorch sees, in seconds rather than a training step's minutes::

    python benchmarks/cpu_bf16.py [--threads 1] [--repeats 3]

Shapes: the wide-64 preset's 32 px block (64 -> 64 channels, 3x3, batch 32) and its 64 px block
(32 -> 32 channels at 64x64).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import device_name, load_note  # noqa: E402

SHAPES = ((32, 64, 32), (32, 32, 64))  # (batch, channels, size)


def time_conv(batch: int, channels: int, size: int, bf16: bool, repeats: int) -> float:
    """Median seconds of one 3x3 conv forward + backward (input and weight gradients)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen, requires_grad=True)
    w = torch.randn(channels, channels, 3, 3, generator=gen, requires_grad=True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, padding=1)
        y.float().square().mean().backward()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    flags = {name: getattr(torch.cpu, f"_is_{name}_supported")() for name in ("avx2", "avx512", "avx512_bf16", "amx_tile")
             if hasattr(torch.cpu, f"_is_{name}_supported")}
    print(f"device: {device_name('cpu')}; torch {torch.__version__}; capability {torch.backends.cpu.get_cpu_capability()}")
    print("flags: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
    print(load_note())
    print()
    print("| batch x channels x size | fp32 s | bf16 s | bf16 / fp32 |")
    print("|---|---:|---:|---:|")
    for batch, channels, size in SHAPES:
        fp32 = time_conv(batch, channels, size, False, args.repeats)
        bf16 = time_conv(batch, channels, size, True, args.repeats)
        print(f"| {batch} x {channels} x {size}x{size} | {fp32:.3f} | {bf16:.3f} | {bf16 / fp32:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
