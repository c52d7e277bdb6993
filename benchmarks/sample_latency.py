"""Sampling latency of randomly initialised generators: time to first image and images/s.

For each family and preset (tiny, small-32, small-64, paper-256): save the generator to a temp dir,
then time ``load_generator`` + the first ``generate_images`` call (what a user waits for after
launching the app), and steady-state throughput at batch sizes 1 and 16 through the app's own
sampling path (seeded z, noise, truncation). Prints a markdown table naming the device.

    python benchmarks/sample_latency.py [--device cuda] [--presets tiny small-32] [--repeats 3]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from app.sampling import generate_images  # noqa: E402
from families import FAMILIES, load_generator  # noqa: E402

PRESETS = ("tiny", "small-32", "small-64", "paper-256")
BATCH_SIZES = (1, 16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def measure(family_name: str, preset: str, device: torch.device, *, repeats: int, folder: Path) -> dict:
    family = FAMILIES[family_name]
    torch.manual_seed(0)
    path = family.generator_cls(family.preset(preset)).save_pretrained(folder / f"{family_name}-{preset}")
    kwargs = {"psi": 0.7, "noise": "random"}
    _sync(device)
    start = time.perf_counter()
    generator = load_generator(path, device=device)
    generate_images(generator, [0], **kwargs)
    _sync(device)
    first = time.perf_counter() - start
    row = {"family": family_name, "preset": preset, "resolution": generator.config.resolution, "first_s": first}
    for batch in BATCH_SIZES:
        seeds = list(range(batch))
        generate_images(generator, seeds, batch_size=batch, **kwargs)  # warm-up: allocator, kernels
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            generate_images(generator, seeds, batch_size=batch, **kwargs)
        _sync(device)
        row[f"ips_{batch}"] = batch * repeats / (time.perf_counter() - start)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per batch size")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family_name in args.families:
            for preset in args.presets:
                rows.append(measure(family_name, preset, device, repeats=args.repeats, folder=Path(tmp)))
                print(f"  measured {family_name} {preset}", file=sys.stderr, flush=True)
    print(f"Device: {_device_name(device)}; torch {torch.__version__}; random init, psi 0.7, random noise\n")
    print("| family | preset | resolution | first image (load + generate) | images/s, batch 1 | images/s, batch 16 |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['family']} | {r['preset']} | {r['resolution']} | {r['first_s'] * 1000:.0f} ms | "
              f"{r['ips_1']:.1f} | {r['ips_16']:.1f} |")


if __name__ == "__main__":
    main()
