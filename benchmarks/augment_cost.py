"""What augmentation costs, against one training step: ms per batch of ADA's pipelines and DiffAugment.

Times forward + backward (the G step and the penalties differentiate through the augmentation) of:
``none``; ADA's ``c`` (colour only: one 4x4 matrix, no resampling), ``bc`` (blit + colour: one
grid_sample), ``bgc`` (the full pipeline, what ``--augment ada`` runs: the same one grid_sample with the
geometric transforms folded into its matrix); DiffAugment's ``color,translation,cutout``; and, as a
cost model only, the paper's anti-aliased path (reflect-pad, 2x upsampling with a 12-tap filter,
grid_sample at twice the resolution, filter + 2x downsampling). Then one real D + G step
(``benchmarks.train_throughput.measure``, StyleGAN-lite demo-64, final resolution) for scale::

    OMP_NUM_THREADS=2 python -m benchmarks.augment_cost [--batch 32] [--resolution 64] [--repeats 20]

Measured on the project's 2-core AMD EPYC VM, loaded by other jobs (CPU, 1 thread), batch 32, 64 px,
ms per call: none 2.8, c 20.4, bc 33.9, bgc 43.0, diffaugment 18.0, paper-2x cost model 1,856; one
D + G step 3,247 (none) and 3,241 (ada: below this VM's noise). See the README ("Small datasets").
The geometric transforms themselves cost nothing beyond building a 3x3 matrix; the resampling is the
cost, and blit alone already needs it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _paper_path_cost_model(x, g_inv):
    """Same FLOPs shape as the paper's filtered path (not a faithful implementation; timing only)."""
    import torch
    import torch.nn.functional as F

    from progan.training.ada import apply_geometric

    n, c, h, w = x.shape
    taps = torch.ones(12, device=x.device) / 12
    x = F.pad(x, [6, 6, 6, 6], mode="reflect")
    up = torch.zeros(n, c, x.shape[2] * 2, x.shape[3] * 2, device=x.device)
    up[:, :, ::2, ::2] = x                                              # zero insertion, then the filter
    kh, kw = taps.view(1, 1, 12, 1).repeat(c, 1, 1, 1), taps.view(1, 1, 1, 12).repeat(c, 1, 1, 1)
    up = F.conv2d(F.conv2d(up, kh, groups=c, padding=(6, 0)), kw, groups=c, padding=(0, 6))
    up = apply_geometric(up, g_inv)
    down = F.conv2d(F.conv2d(up, kh, groups=c, padding=(6, 0)), kw, groups=c, padding=(0, 6))[:, :, ::2, ::2]
    return down[:, :, 6:6 + h, 6:6 + w]


def time_augment(name: str, batch: int, resolution: int, repeats: int) -> float:
    import torch

    from progan.training.ada import AdaAugment, draw_parameters, geometric_matrix
    from progan.training.augment import Augment

    x = (torch.rand(batch, 3, resolution, resolution) * 2 - 1).requires_grad_(True)
    if name == "none":
        fn = lambda t: t  # noqa: E731
    elif name == "diffaugment":
        fn = Augment(("color", "translation", "cutout"), p=1.0)
    elif name == "paper-2x (cost model)":
        def fn(t):
            params = draw_parameters(batch, 0.5, height=resolution, width=resolution, groups=("blit", "geom"))
            return _paper_path_cost_model(t, geometric_matrix(params, batch))
    else:
        groups = {"c": ("color",), "bc": ("blit", "color"), "bgc": ("blit", "geom", "color")}[name]
        fn = AdaAugment(p=0.5, groups=groups)
    weight = torch.randn(1, 3, 1, 1)
    for _ in range(3):
        (fn(x) * weight).sum().backward()
    start = time.perf_counter()
    for _ in range(repeats):
        (fn(x) * weight).sum().backward()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--step-repeats", type=int, default=6, help="D+G steps timed for the comparison")
    args = parser.parse_args()

    from benchmarks.train_throughput import device_name, measure

    print(f"device: {device_name()}, batch {args.batch}, {args.resolution} px, forward + backward\n")
    print("| augmentation | ms per batch |")
    print("|---|---:|")
    for name in ("none", "c", "bc", "bgc", "diffaugment", "paper-2x (cost model)"):
        print(f"| {name} | {time_augment(name, args.batch, args.resolution, args.repeats):.2f} |", flush=True)
    if args.resolution == 64:
        for augment in ("none", "ada"):
            r = measure("stylegan_lite", "demo-64", -1, args.batch, args.step_repeats, "no", augment=augment,
                        channels_last=True)
            print(f"\nStyleGAN-lite demo-64 D+G step, augment {augment}: {1000 * args.batch / r['img_per_s']:.1f} ms "
                  f"({r['img_per_s']:.1f} img/s)", flush=True)


if __name__ == "__main__":
    main()
