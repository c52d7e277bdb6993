"""Figures for the README and model cards from exported weights and a run's sample grids.

    python scripts/campaign_figures.py --weights weights/stylegan_lite-openmoji --out docs/campaign/stylegan_lite \
        [--run campaign/stylegan_lite-demo64 --kimg 0,30,90,150,210,300]

Writes ``samples.png`` (32 seeds, psi 1), for StyleGAN-lite also ``truncation.png`` (rows: seeds;
columns: psi 1 -> 0, the last column is the average image w_avg for every seed) and
``mixing-coarse.png`` / ``mixing-middle.png`` (StyleGAN figure 3), and with ``--run`` a strip of the
run's fixed-latent sample grids at the given kimg (``training.png``). Images are enlarged by whole
factors with nearest-neighbour, so every generated pixel stays visible.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PSIS = (1.0, 0.85, 0.7, 0.5, 0.25, 0.0)


def _enlarge(image, factor: int):
    from PIL import Image
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def training_strip(run: Path, kimgs: list[float], out: Path, *, cell: int = 256) -> None:
    """The fixed-latent grids the run saved, side by side with a kimg label under each."""
    from PIL import Image, ImageDraw

    grids = []
    for kimg in kimgs:
        matches = sorted(run.glob("samples/grid-*kimg.png"),
                         key=lambda p: abs(float(p.name[5:-8]) - kimg))
        if not matches:
            raise SystemExit(f"error: no sample grids in {run}/samples")
        grids.append((matches[0], float(matches[0].name[5:-8])))
    strip = Image.new("RGB", (len(grids) * (cell + 8) - 8, cell + 22), "white")
    draw = ImageDraw.Draw(strip)
    for i, (path, kimg) in enumerate(grids):
        with Image.open(path) as grid:
            strip.paste(grid.convert("RGB").resize((cell, cell), Image.NEAREST), (i * (cell + 8), 0))
        draw.text((i * (cell + 8) + 4, cell + 5), f"{kimg:.0f} kimg", fill="black")
    strip.save(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--run", type=Path, default=None, help="training run dir with samples/")
    parser.add_argument("--kimg", default="", help="comma list of kimg for the training strip")
    args = parser.parse_args(argv)

    from app.mixing import mixing_figure, render_mixing
    from app.sampling import generate_images, is_stylegan, make_grid
    from families import load_generator

    generator = load_generator(args.weights)
    factor = max(1, 128 // generator.config.resolution)
    args.out.mkdir(parents=True, exist_ok=True)
    images = generate_images(generator, list(range(32)), psi=1.0)
    _enlarge(make_grid(list(images), columns=8, padding=2), factor).save(args.out / "samples.png")
    written = ["samples.png"]
    if is_stylegan(generator):
        seeds = list(range(6))
        columns = [generate_images(generator, seeds, psi=psi, noise="fixed") for psi in PSIS]
        cells = [columns[c][r] for r in range(len(seeds)) for c in range(len(PSIS))]
        _enlarge(make_grid(cells, columns=len(PSIS), padding=2), factor).save(args.out / "truncation.png")
        written.append("truncation.png")
        for styles in ("coarse", "middle"):
            rows, cols, mixed = render_mixing(generator, [10, 11, 12], [1, 2, 3, 4], styles=styles, psi=1.0,
                                              noise="fixed")
            _enlarge(mixing_figure(rows, cols, mixed), factor).save(args.out / f"mixing-{styles}.png")
            written.append(f"mixing-{styles}.png")
    if args.run is not None:
        kimgs = [float(k) for k in args.kimg.split(",") if k.strip()]
        training_strip(args.run, kimgs, args.out / "training.png")
        written.append("training.png")
    print(f"wrote {', '.join(written)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
