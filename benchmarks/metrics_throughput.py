"""Inception-v3 feature extraction throughput (images/s) on the current device, as a markdown table.

Measures `progan.metrics.inception.load_feature_network()` end to end -- uint8 -> resize to 299 -> network
-> [N, 2048] -- the cost that dominates FID/KID/PR evaluation (Heusel et al. 2017 features).

    python -m benchmarks.metrics_throughput [--batch-size 64] [--batches 3] [--resolution 64 256]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.machine import device_name
from progan.metrics.inception import load_feature_network


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    *, resolution: int, batch_size: int, batches: int, device: torch.device
) -> float:
    """Images per second over `batches` timed batches, after one warm-up batch."""
    network = load_feature_network(device=device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 3, resolution, resolution), generator=gen, dtype=torch.uint8)
    images = images.to(device)
    network(images)  # warm-up: TorchScript profiles its first runs, cuDNN picks algorithms
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(batches):
        network(images)
    _synchronize(device)
    return batch_size * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per row")
    parser.add_argument("--resolution", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {device_name(device)}, torch {torch.__version__}\n")
    print("| input resolution | batch | images/s |")
    print("|---:|---:|---:|")
    for resolution in args.resolution:
        rate = measure(
            resolution=resolution, batch_size=args.batch_size, batches=args.batches, device=device
        )
        print(f"| {resolution} -> 299 | {args.batch_size} | {rate:.1f} |")


if __name__ == "__main__":
    main()
