"""data_prep throughput: images/s for preparing JPEG folders and for loading training batches.

    python benchmarks/data_throughput.py [--workers N] [--small]

Preparing: synthetic photo-like JPEGs (smooth gradients + sensor-like noise, quality 90) at
sizes a real collection holds for each target: 768x576 for 256 (a typical web photo, 2.25x the
target on the short side) and 1280x1024 for 1024 (just above the target, as in FFHQ-style sets).
Loading: ImageDataset through a DataLoader, batches of 64, shuffled, uint8 as train.py gets them.
Prints one markdown table; the numbers are only comparable on the same machine and load.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

from data_prep import ImageDataset, prepare  # noqa: E402
from data_prep.pipeline import default_workers  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402


def write_jpegs(folder: Path, count: int, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(0)
    for i in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        base = 127 + 100 * np.sin(np.stack([x / 97 + phase[0], y / 61 + phase[1],
                                            (x + y) / 143 + phase[2]], -1))
        noise = rng.normal(0, 12, (height, width, 1))  # same grain in all channels, like luma
        pixels = (base + noise).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        (folder / f"{i:05d}.jpg").write_bytes(buffer.getvalue())


def bench_prepare(root: Path, count: int, size: tuple[int, int], resolution: int,
                  workers: int) -> tuple[Path, dict]:
    source = root / f"jpeg-{size[0]}x{size[1]}"
    write_jpegs(source, count, size)
    start = time.perf_counter()
    out = prepare(source, root / f"ds-{resolution}", resolution=resolution, workers=workers,
                  progress=False)
    seconds = time.perf_counter() - start
    return out, {"stage": f"prepare JPEG {size[0]}x{size[1]} (+pyramid)", "res": resolution,
                 "images": count, "workers": workers, "seconds": seconds,
                 "rate": count / seconds}


def bench_load(dataset_dir: Path, resolution: int, workers: int, epochs: int) -> dict:
    import torch
    from torch.utils.data import DataLoader

    dataset = ImageDataset(dataset_dir, resolution, xflip=True)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers,
                        drop_last=True, persistent_workers=workers > 0)
    for batch in loader:  # warm-up epoch: starts workers, fills the page cache
        assert batch.dtype == torch.uint8
    images, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            images += batch.shape[0]
    seconds = time.perf_counter() - start
    return {"stage": "load DataLoader batch 64, shuffled", "res": resolution, "images": images,
            "workers": workers, "seconds": seconds, "rate": images / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--small", action="store_true", help="a quick run with 1/5 of the images")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads of the loading process (DataLoader workers use 1)")
    args = parser.parse_args()
    import torch

    # Batches are stacked by torch in the process that iterates when num_workers=0; on a small or
    # shared machine its thread pool can spin against other work, so the count is explicit.
    torch.set_num_threads(args.torch_threads)
    scale = 5 if args.small else 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ds256, row = bench_prepare(root, 500 // scale, (768, 576), 256, args.workers)
        rows.append(row)
        _, row = bench_prepare(root, 200 // scale, (1280, 1024), 1024, args.workers)
        rows.append(row)
        for resolution in (64, 256):
            for workers in (0, min(2, args.workers)):
                epochs = 20 if resolution == 64 else 5  # similar seconds per row
                rows.append(bench_load(ds256, resolution, workers, epochs))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nDevice: {cpu_model()}, {os.cpu_count()} cores visible, {default_workers()} usable; "
          f"load average {load:.1f} at the end; Python {platform.python_version()}; "
          f"torch threads {args.torch_threads}\n")
    print("| stage | resolution | images | workers | seconds | images/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['stage']} | {r['res']} | {r['images']} | {r['workers']} | "
              f"{r['seconds']:.2f} | {r['rate']:,.0f} |")


if __name__ == "__main__":
    main()
