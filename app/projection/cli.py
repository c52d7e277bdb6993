"""``python -m app.project IMAGE --weights W --out DIR``: find the latent of your own picture.

    python -m app.project photo.jpg --out runs/me                     # bundled StyleGAN-lite, w
    python -m app.project photo.jpg --w-plus --steps 500 --out runs/me  # one w per layer
    python -m app.project emoji.png --weights weights/progan-openmoji --out runs/me-progan   # z

The image goes through data_prep's decoding (EXIF orientation, alpha composited on
``--background``, palette/16-bit/CMYK, first frame of animations; ``data_prep.decode``) and its
square crop + Lanczos resize (``data_prep.resize``) to the model's resolution. Then the projector
(``app.projection``, after Karras et al. 2020, section 5) runs ``--steps`` Adam steps. Written to
``--out``: ``latent.safetensors`` (use it with ``app.generate --latent``), ``target.png`` (the
input as the model sees it), ``reconstruction.png`` and ``before_after.png`` (both, enlarged).
A file that is not a usable image gives one ``error:`` line and exit status 2.

A class-conditional model projects onto one class, ``--class NAME|INDEX`` (``progan.conditioning.
bind_class``: the search runs in that class's z or w space; default the first class, with a note); the
class is recorded in the latent's metadata, and ``app.generate --latent ... --class NAME`` renders it.
An unknown class is one line listing the valid ones.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from .target import before_after, load_target

__all__ = ["main"]

MAX_FILE_BYTES = 64 * 2**20          # the CLI reads your own files; the app has its own, smaller cap
_VECTOR = (".svg",)


def _parser() -> argparse.ArgumentParser:
    from .loss import LOSSES
    from .projector import ProjectionOptions

    defaults = ProjectionOptions()
    parser = argparse.ArgumentParser(prog="python -m app.project", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="image file (PNG, JPEG, WebP, GIF, TIFF, BMP, SVG with the openmoji extra)")
    parser.add_argument("--weights", metavar="PATH|URL|hf://org/repo[/file]",
                        help="generator (default: the bundled StyleGAN-lite weights, else ProGAN)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
    parser.add_argument("--w-plus", action="store_true", help="StyleGAN-lite: one w per layer (W+) instead of one w")
    parser.add_argument("--loss", choices=LOSSES, default=defaults.loss,
                        help=f"image distance (default {defaults.loss}; lap+inception needs the metrics extra)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise maps and w-noise")
    parser.add_argument("--crop", choices=("center", "pad"), default="center",
                        help="center: largest centred square; pad: whole image on --background")
    parser.add_argument("--background", default="255,255,255", help="R,G,B behind transparent pixels")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--class", dest="class_name", default=None, metavar="NAME|INDEX",
                        help="class-conditional models: project onto this class (default: the first, with a note)")
    return parser


def _background(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise ValueError(f"--background must be R,G,B with values 0-255, got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def run(args: argparse.Namespace) -> str:
    """Project ``args.image``; returns a one-line summary. Raises ValueError/OSError for bad input."""
    from tqdm.auto import tqdm

    from families import load_generator
    from progan.metrics.reconstruction import psnr, ssim

    from ..generate import with_class
    from ..models import default_device, launch_sources
    from .projector import ProjectionOptions, image_to_target, project, reconstruction_pixels

    if not args.image.is_file():
        raise ValueError(f"{args.image}: no such file")
    if args.image.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{args.image}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    background = _background(args.background)
    source = args.weights or next(iter(launch_sources(None).values()))
    generator = with_class(load_generator(source, device=args.device or default_device()), args.class_name)
    stylegan = generator.config.family == "stylegan_lite"
    if args.w_plus and not stylegan:
        raise ValueError("--w-plus needs a StyleGAN-lite model (ProGAN has no W space)")
    options = ProjectionOptions(steps=args.steps, space=("w+" if args.w_plus else "w") if stylegan else "z",
                                loss=args.loss, seed=args.seed)
    target = load_target(args.image.read_bytes(), generator.config.resolution, name=str(args.image),
                         crop=args.crop, background=background, allow_svg=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bar = tqdm(total=options.steps, desc="projecting", unit="step", disable=None)

    def progress(state) -> None:
        bar.update(1)
        if state.step % 10 == 0 or state.step == state.steps:
            bar.set_postfix(loss=f"{state.loss:.4f}")

    with bar:
        projection = project(generator, image_to_target(target), options, progress=progress)
    seconds = time.perf_counter() - start
    projection.metadata.update({"image": args.image.name, "weights": str(source)})
    if generator.config.class_names:  # render it with the same class: bind_class(generator, this)
        projection.metadata["class"] = generator.config.class_names[generator.label]
    projection.save(args.out / "latent.safetensors")
    reconstruction = reconstruction_pixels(projection.render(generator))
    Image.fromarray(target).save(args.out / "target.png")
    Image.fromarray(reconstruction).save(args.out / "reconstruction.png")
    before_after(target, reconstruction).save(args.out / "before_after.png")
    return (f"wrote {args.out}/latent.safetensors ({projection.space}), reconstruction.png, before_after.png: "
            f"PSNR {psnr(reconstruction, target):.2f} dB, SSIM {ssim(reconstruction, target):.3f}, "
            f"{options.steps} steps in {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(run(args))
    except (ValueError, OSError, RuntimeError) as exc:  # bad image, weights or device: one line, no traceback
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
