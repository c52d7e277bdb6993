"""Largest per-GPU batch that fits in 24, 40 and 80 GB, per family, resolution and precision.

An estimate, not a GPU measurement: every number comes from ``progan.training.memory``, which traces
one full training iteration (D step with its penalty, G step, both Adam steps, EMA, the flat gradient
all-reduce buffer of a multi-process run) on fake tensors on the CPU. The trace is taken at the final
stage during its fade-in (alpha 0.5: both paths alive, the largest graph of a progressive run) with
each family's default loss and the paper presets' TrainConfig defaults. Prints a markdown table::

    python benchmarks/memory_estimate.py [--presets paper-256,paper-1024] [--precisions bf16,no]

A batch fits a card of C GiB if the traced peak is at most ``(1 - fragmentation) * (C - reserved)``:
by default 1.5 GiB reserved for the CUDA context and cuDNN workspaces, and 10% of the rest for the
caching allocator's rounding and fragmentation. Total memory grows linearly with the batch (the
trace shows it), so each configuration is traced at two batch sizes, the largest fitting batch is
read off the line, and that batch and the next are traced again to confirm it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GiB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="progan,stylegan_lite")
    parser.add_argument("--presets", default="paper-256,paper-1024")
    parser.add_argument("--precisions", default="bf16,no", help="bf16, fp16, no (fp32)")
    parser.add_argument("--capacities", default="24,40,80", help="card memory in GiB")
    parser.add_argument("--reserved", type=float, default=1.5, help="GiB for the CUDA context and cuDNN workspaces")
    parser.add_argument("--fragmentation", type=float, default=0.10, help="fraction lost to the caching allocator")
    parser.add_argument("--processes", type=int, default=2, help=">1 includes the flat all-reduce buffer")
    args = parser.parse_args()

    from families import FAMILIES
    from progan.training.memory import estimate_training_memory
    from progan.training.options import TrainConfig

    capacities = [float(c) for c in args.capacities.split(",")]
    usable = {c: (1.0 - args.fragmentation) * (c - args.reserved) * GiB for c in capacities}
    cache: dict[tuple, int] = {}

    def total(family: str, preset: str, precision: str, batch: int) -> int:
        key = (family, preset, precision, batch)
        if key not in cache:
            config = TrainConfig(family=family, preset=preset, batch_size=batch, mixed_precision=precision)
            cache[key] = estimate_training_memory(config, FAMILIES[family], processes=args.processes).total
        return cache[key]

    head = " | ".join(f"{c:g} GB" for c in capacities)
    print(f"| family | resolution | precision | GiB at batch 1 | GiB per image | {head} |")
    print("|---|---:|---|---:|---:|" + "---:|" * len(capacities))
    started = time.time()
    for family in args.families.split(","):
        for preset in args.presets.split(","):
            for precision in args.precisions.split(","):
                low, high = total(family, preset, precision, 2), total(family, preset, precision, 4)
                per_image = (high - low) / 2
                fixed = low - 2 * per_image
                cells = []
                for c in capacities:
                    batch = max(0, int((usable[c] - fixed) // per_image))
                    # confirm on the trace itself: batch fits, batch + 1 does not
                    while batch > 0 and total(family, preset, precision, batch) > usable[c]:
                        batch -= 1
                    while total(family, preset, precision, batch + 1) <= usable[c]:
                        batch += 1
                    cells.append(str(batch))
                resolution = FAMILIES[family].preset(preset).resolution
                name = {"no": "fp32"}.get(precision, precision)
                print(f"| {family} | {resolution} | {name} | {total(family, preset, precision, 1) / GiB:.2f} | "
                      f"{per_image / GiB:.3f} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{len(cache)} traces in {time.time() - started:.0f} s; fits = traced peak <= "
          f"(1 - {args.fragmentation:g}) x (card - {args.reserved:g} GiB); {args.processes} processes "
          "(flat all-reduce buffer included); final stage at alpha 0.5; default loss per family")


if __name__ == "__main__":
    main()
