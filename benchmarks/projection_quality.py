"""Projection quality and time per image on the bundled weights (or any ``--weights``).

1. *Generated* targets with known latents (seed ``1000 + i``, psi 1, the model's constant noise):
   project them and report PSNR / SSIM of reconstruction vs target (and, for w, the distance of
   the recovered w from the true one in units of w_std), per distance (``--losses``) and space.
2. *Real* OpenMoji emoji (every ``4495 // n``-th SVG, rendered by data_prep at the model's
   resolution): PSNR / SSIM, and a figure (target row, then one row per model/space), nearest-
   enlarged, written to ``--figure``.
Prints markdown tables naming the device; time is wall-clock per image, single process.

    python benchmarks/projection_quality.py --generated 8 --real 8 --steps 300 --figure docs/projection.png
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from app.projection.target import load_target  # noqa: E402
from app.projection import ProjectionOptions, image_to_target, project, reconstruction_pixels  # noqa: E402
from app.sampling import make_grid, to_uint8  # noqa: E402
from app.video import upscale_nearest  # noqa: E402
from benchmarks.machine import device_name  # noqa: E402
from families import load_generator  # noqa: E402
from progan.metrics.reconstruction import psnr, ssim  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _generated(generator, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    z = torch.randn(1, generator.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        if generator.config.family == "stylegan_lite":
            w = generator.mapping(z)
            return to_uint8(generator.synthesis(generator.broadcast(w), noise_mode="const"))[0], w
        return to_uint8(generator(z))[0], z


def _w_std(generator) -> float:
    with torch.no_grad():
        w = generator.mapping(torch.randn(10_000, generator.config.latent_dim, generator=torch.Generator().manual_seed(0)))
    return float(((w - w.mean(0)).square().sum() / len(w)).sqrt())


def _emoji(n: int, resolution: int) -> list[tuple[str, np.ndarray]]:
    from data_prep.openmoji import svg_folder

    names = sorted(p.name for p in svg_folder().iterdir() if p.name.endswith(".svg"))
    picks = names[:: max(1, len(names) // n)][:n]
    return [(name, load_target((svg_folder() / name).read_bytes(), resolution, allow_svg=True)) for name in picks]


def _run(generator, target: np.ndarray, options: ProjectionOptions):
    start = time.perf_counter()
    projection = project(generator, image_to_target(target), options)
    seconds = time.perf_counter() - start
    return projection, reconstruction_pixels(projection.render(generator)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=[str(ROOT / "weights" / n) for n in
                                                          ("stylegan_lite-openmoji", "progan-openmoji")])
    parser.add_argument("--generated", type=int, default=8)
    parser.add_argument("--real", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--losses", default="pixel,lap")
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    print(f"device: {device_name('cpu')}, torch {torch.__version__}, steps {args.steps}\n")
    rows = ["| model | space | loss | targets | PSNR dB | SSIM | w error / w_std | s / image |",
            "|---|---|---|---|---:|---:|---:|---:|"]
    figure_rows: list[list[np.ndarray]] = []
    for source in args.weights:
        generator = load_generator(source)
        stylegan = generator.config.family == "stylegan_lite"
        name = Path(source).name
        spaces = ("w", "w+") if stylegan else ("z",)
        w_std = _w_std(generator) if stylegan else None
        emoji = _emoji(args.real, generator.config.resolution) if args.real else []
        if emoji and not figure_rows:
            figure_rows.append([im for _, im in emoji])
        for space in spaces:
            for loss in args.losses.split(","):
                options = ProjectionOptions(steps=args.steps, space=space, loss=loss)
                scores, errors, times = [], [], []
                for i in range(args.generated):
                    target, latent = _generated(generator, 1000 + i)
                    projection, rec, seconds = _run(generator, target, options)
                    scores.append((psnr(rec, target), ssim(rec, target)))
                    times.append(seconds)
                    if space == "w":
                        errors.append(float((projection.latent - latent).norm()) / w_std)
                if scores:
                    p, s = np.mean(scores, axis=0)
                    err = f"{np.mean(errors):.2f}" if errors else "–"
                    rows.append(f"| {name} | {space} | {loss} | {len(scores)} generated | {p:.2f} | {s:.3f} | {err} | "
                                f"{np.mean(times):.2f} |")
                    print(rows[-1], flush=True)
                if emoji and loss == options.loss and loss == args.losses.split(",")[-1]:
                    scores, times, recs = [], [], []
                    for _, target in emoji:
                        _, rec, seconds = _run(generator, target, options)
                        scores.append((psnr(rec, target), ssim(rec, target)))
                        times.append(seconds)
                        recs.append(rec)
                    p, s = np.mean(scores, axis=0)
                    rows.append(f"| {name} | {space} | {loss} | {len(emoji)} OpenMoji | {p:.2f} | {s:.3f} | – | "
                                f"{np.mean(times):.2f} |")
                    print(rows[-1], flush=True)
                    figure_rows.append(recs)
    print("\n" + "\n".join(rows))
    if args.figure and figure_rows:
        tiles = [upscale_nearest(np.stack(row), min_size=64) for row in figure_rows]
        grid = make_grid([im for row in tiles for im in row], columns=len(figure_rows[0]), padding=2)
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.figure)
        print(f"\nfigure: {args.figure} (rows: targets, then " + ", ".join(
            f"{Path(s).name} {sp}" for s in args.weights for sp in
            (("w", "w+") if "stylegan" in Path(s).name else ("z",))) + ")")


if __name__ == "__main__":
    main()
