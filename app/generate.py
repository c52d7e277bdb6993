"""``python -m app.generate``: the app's operations, written to files.

    python -m app.generate grid --seeds 0-15 --psi 0.7 --out grid.png
    python -m app.generate interpolate --seeds 1,2,3 --frames 96 --fps 24 --method slerp --out walk.mp4
    python -m app.generate mix --rows 10-12 --cols 1-4 --styles coarse --out mix.png
    python -m app.generate edit --seeds 0-3 --layers 0-3 --directions 0-4 --strength 3 --out edit.png  # SeFa
    python -m app.generate --onnx model.onnx --seeds 0-15 --psi 0.7 --out grid.png   # from app.export_onnx
    python -m app.generate interpolate --latent runs/me/latent.safetensors --seeds image,1 --space w --method lerp \
        --out me.mp4                                                  # a picture projected by app.project
    python -m app.generate --weights runs/cond/export --class "Animals & Nature" --seeds 0-15 --out animals.png

``grid`` is the default command (``python -m app.generate --seeds 0-15 --out grid.png``). Without
``--weights`` the bundled weights are used. The same seeds give the same pixels as in the app.
``--latent`` takes a ``latent.safetensors`` written by ``app.project`` (or downloaded from the app's
"Your image" tab); the seed lists then accept ``image`` for it, as the app's seed boxes do
(``app.keys``). A file that is not a latent for the chosen model gives one ``error:`` line.
A class-conditional model (``train.py --cond``) draws the class given by ``--class NAME`` (or index);
without it, its first class, with a note; an unknown name gives one line listing the valid ones.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .interpolation import METHODS, SPACES
from .keys import IMAGE_TOKEN
from .limits import CLI_LIMITS, check_int, check_truncation
from .edit import add_edit_parser
from .mixing import STYLE_RANGES
from .sampling import NOISE_MODES

COMMANDS = ("grid", "interpolate", "mix", "edit")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--weights", metavar="PATH|URL|hf://org/repo[/file]",
                        help="generator to use (default: the bundled StyleGAN-lite weights, else ProGAN)")
    common.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    common.add_argument("--psi", type=float, default=1.0, help="truncation psi in [-1, 2] (StyleGAN-lite; 1 = off)")
    common.add_argument("--cutoff", type=int, default=None, help="truncate style layers below this one (default: all)")
    common.add_argument("--noise", choices=NOISE_MODES, default=None,
                        help="random: drawn from each seed; fixed: the model's constant noise; none "
                             "(default: random for grid, fixed for videos and mixing)")
    common.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    common.add_argument("--latent", type=Path, default=None, metavar="PATH",
                        help=f'latent.safetensors from app.project; write "{IMAGE_TOKEN}" among the seeds to use it')
    common.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                        help="class of a conditional model (train.py --cond), by name or index (default: the first)")
    common.add_argument("--out", type=Path, required=True, help="output file")
    parser = argparse.ArgumentParser(prog="python -m app.generate", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("grid", parents=[common], help="one image per seed, tiled (.png/.jpg/.webp)")
    grid.add_argument("--seeds", default="0-15", help='"3", "0-15", "1,5,9" or "random:8" (default: 0-15)')
    grid.add_argument("--columns", type=int, default=None, help="grid columns (default: ceil(sqrt(N)))")
    grid.add_argument("--padding", type=int, default=0, help="pixels between images")
    grid.add_argument("--onnx", type=Path, default=None,
                      help="sample from this ONNX file (app.export_onnx) with onnxruntime instead of --weights")
    walk = commands.add_parser("interpolate", parents=[common], help="a walk through seeds (.mp4 or .gif)")
    walk.add_argument("--seeds", default="1,2,3", help="two or more seeds to pass through")
    walk.add_argument("--frames", type=int, default=96, help="total frames (default: 96, 4 s at 24 fps)")
    walk.add_argument("--fps", type=int, default=24, help="frames per second (default: 24)")
    walk.add_argument("--space", choices=SPACES, default="z", help="z, or w (StyleGAN-lite, lerp only)")
    walk.add_argument("--method", choices=METHODS, default="slerp", help="lerp or slerp (z only)")
    walk.add_argument("--loop", action="store_true", help="return to the first seed (seamless loop)")
    walk.add_argument("--min-size", type=int, default=256,
                      help="enlarge frames (nearest) to at least this side (default: 256)")
    mix = commands.add_parser("mix", parents=[common], help="StyleGAN style-mixing figure (.png/.jpg/.webp)")
    mix.add_argument("--rows", default="10-12", help="row seeds: source B, whose styles are copied")
    mix.add_argument("--cols", default="1-4", help="column seeds: source A, which keeps the other styles")
    mix.add_argument("--styles", choices=tuple(STYLE_RANGES), default="coarse",
                     help="layers copied from B: coarse 4-8 px, middle 16-32 px, fine 64 px and up")
    mix.add_argument("--padding", type=int, default=0, help="pixels between images")
    add_edit_parser(commands, common)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "grid")  # `python -m app.generate --seeds 0-15 --out grid.png`
    parser = _parser()
    args = parser.parse_args(argv)
    suffixes = (".mp4", ".gif") if args.command == "interpolate" else _IMAGE_SUFFIXES
    if args.out.suffix.lower() not in suffixes:
        parser.error(f"--out must end in {', '.join(suffixes)} for {args.command}, got {str(args.out)!r}")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def _progress_bar(desc: str):
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=desc, unit="img", disable=None)  # disable=None: no bar when not a terminal

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return update


def run(args: argparse.Namespace) -> str:
    """Do the work; returns a one-line summary. Raises ValueError/OSError for bad input or weights."""
    import torch

    from families import load_generator

    from .interpolation import render_interpolation
    from .keys import parse_keys
    from .mixing import mixing_figure, render_mixing
    from .models import default_device, launch_sources
    from .sampling import is_stylegan, make_grid
    from .video import write_video

    seed_lists = [getattr(args, name) for name in ("seeds", "rows", "cols") if hasattr(args, name)]
    named = any(_names_image(text) for text in seed_lists)
    if args.latent is not None and not named:
        raise ValueError(f'--latent is given but no seed list names it: write "{IMAGE_TOKEN}" among the seeds, '
                         f"e.g. --seeds {IMAGE_TOKEN},1")
    if named and args.latent is None:
        raise ValueError(f'"{IMAGE_TOKEN}" in the seeds needs --latent PATH (a latent.safetensors from app.project)')
    if getattr(args, "onnx", None) is not None:
        if args.latent is not None:
            raise ValueError("--latent needs --weights: the ONNX graph takes seeds only")
        return _run_onnx(args)
    source = args.weights or next(iter(launch_sources(None).values()))
    torch.device(args.device or default_device())
    generator = with_class(load_generator(source, device=args.device or default_device()), args.class_name)
    projection = _load_latent(args.latent, generator, source) if args.latent is not None else None

    def keys(text: str, max_count: int) -> list:
        return parse_keys(text, max_count=max_count, projection=projection)

    config, limits = generator.config, CLI_LIMITS
    psi, cutoff = check_truncation(config, args.psi, args.cutoff, limits)
    if not is_stylegan(generator) and (args.psi != 1.0 or args.cutoff is not None):
        print("note: ProGAN has no W space; --psi and --cutoff are ignored", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.command == "grid":
        seeds = keys(args.seeds, limits.images_allowed(config.resolution))
        images = _key_images(generator, seeds, psi=psi, cutoff=cutoff, noise=args.noise or "random",
                             batch_size=args.batch_size)
        columns = check_int("--columns", args.columns, 1, len(seeds)) if args.columns else None
        _save(make_grid(images, columns=columns, padding=max(0, args.padding)), args.out)
        what = f"{len(seeds)} images"
    elif args.command == "interpolate":
        seeds = keys(args.seeds, limits.max_keyframes)
        frames = check_int("--frames", args.frames, 2, limits.frames_allowed(config.resolution))
        fps = check_int("--fps", args.fps, limits.min_fps, limits.max_fps)
        clip = render_interpolation(generator, seeds, frames=frames, space=args.space, method=args.method,
                                    loop=args.loop, psi=psi, cutoff=cutoff, noise=args.noise or "fixed",
                                    batch_size=args.batch_size, progress=_progress_bar("rendering"))
        write_video(clip, args.out, fps=fps, min_size=check_int("--min-size", args.min_size, 1, 4096))
        what = f"{frames} frames through seeds {_key_text(seeds)}"
    elif args.command == "edit":
        return _run_edit(args, generator, keys(args.seeds, limits.max_mix_seeds), psi, start)
    else:
        rows = keys(args.rows, limits.max_mix_seeds)
        cols = keys(args.cols, limits.max_mix_seeds)
        row_images, col_images, cells = render_mixing(generator, rows, cols, styles=args.styles, psi=psi,
                                                      cutoff=cutoff, noise=args.noise or "fixed",
                                                      progress=_progress_bar("mixing"))
        mixing_figure(row_images, col_images, cells, padding=max(0, args.padding)).save(args.out)
        what = f"{len(rows)}x{len(cols)} style-mixing grid ({args.styles} styles from the rows)"
    return f"wrote {args.out}: {what} in {time.perf_counter() - start:.2f} s"


def with_class(generator, name: str | None):
    """The generator bound to class ``name`` (``progan.conditioning.bind_class``); a conditional model
    without ``name`` draws its first class, and says so."""
    from progan.conditioning import bind_class

    names = generator.config.class_names
    if names and name is None:
        print(f"note: conditional model; drawing class {names[0]!r} (--class: {', '.join(map(repr, names))})",
              file=sys.stderr)
        name = names[0]
    return bind_class(generator, name)


def _save(image, path: Path) -> None:
    """PNG/WebP keep L and RGBA as they are; JPEG has no alpha, so RGBA is composited on white there."""
    if image.mode == "RGBA" and path.suffix.lower() in (".jpg", ".jpeg"):
        from PIL import Image

        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    image.save(path)


def _names_image(text: str) -> bool:
    return any(part.strip().lower() == IMAGE_TOKEN for part in str(text).split(","))


def _key_text(keys: list) -> str:
    return ",".join(str(k) if isinstance(k, int) else IMAGE_TOKEN for k in keys)


def _load_latent(path: Path, generator, source: str):
    """``app.project``'s latent file, checked against ``generator``.

    Raises ValueError (one line, naming ``path``) when the file is missing, is not a projection or
    does not fit the model's family, space or shapes.
    """
    from .projection import Projection, check_compatible

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    projection = Projection.load(path)  # not safetensors, or not a projection: one line naming the file
    try:
        check_compatible(projection, generator)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    made_with = projection.metadata.get("weights")  # app.project records it; the app records a label only
    if made_with and Path(str(made_with)).resolve() != Path(str(source)).resolve():
        # same shapes, so it runs; but a latent only means the picture for the model that projected it
        print(f"note: {path} was projected with {made_with}; drawing it with {source}", file=sys.stderr)
    return projection


def _key_images(generator, keys: list, *, psi: float, cutoff: int | None, noise: str, batch_size: int):
    """``[N, R, R, 3]`` uint8: seeds as in the app's grid, the projected image as its reconstruction
    (own noise maps, no truncation: the same pixels ``app.project`` wrote)."""
    import numpy as np

    from .projection import reconstruction_pixels
    from .sampling import generate_images

    seeds = [k for k in keys if isinstance(k, int)]
    drawn = iter(generate_images(generator, seeds, psi=psi, cutoff=cutoff, noise=noise, batch_size=batch_size,
                                 progress=_progress_bar("generating")) if seeds else ())
    return np.stack([next(drawn) if isinstance(k, int) else reconstruction_pixels(k.render(generator)) for k in keys])


def _run_onnx(args: argparse.Namespace) -> str:
    from .onnx.sampling import OnnxModel
    from .sampling import make_grid, parse_seeds

    if args.weights:
        raise ValueError("give --onnx or --weights, not both")
    model = OnnxModel(args.onnx)
    limits = CLI_LIMITS
    psi = check_truncation(_OnnxConfig(), args.psi, None, limits)[0]
    if "psi" not in model.inputs and args.psi != 1.0:
        print("note: this graph has no psi input (ProGAN); --psi is ignored", file=sys.stderr)
    if args.cutoff is not None or args.noise is not None:
        print(f"note: --cutoff and --noise were fixed at export ({model.metadata.get('noise')} noise); ignored",
              file=sys.stderr)
    seeds = parse_seeds(args.seeds, max_count=limits.images_allowed(model.resolution))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    images = model.images(seeds, psi=psi, batch_size=args.batch_size, label=model.class_label(args.class_name))
    columns = check_int("--columns", args.columns, 1, len(seeds)) if args.columns else None
    make_grid(images, columns=columns, padding=max(0, args.padding)).save(args.out)
    return f"wrote {args.out}: {len(seeds)} images from {args.onnx} (onnxruntime) in {time.perf_counter() - start:.2f} s"


class _OnnxConfig:
    num_stages = 0  # psi is checked against the limits only; the cutoff was fixed at export


def _run_edit(args: argparse.Namespace, generator, seeds: list, psi: float, start: float) -> str:
    """``edit``: SeFa directions (cached, or --directions-file) applied to each seed, as a grid."""
    from .directions import Directions, cached_directions, weights_digest
    from .edit import edit_grid, parse_indices, strengths_for

    if args.directions_file:
        directions = Directions.load(args.directions_file)
        directions.check_fits(generator, weights_digest(generator))
    else:
        directions = cached_directions(generator, layers=args.layers, k=args.k)
    indices = parse_indices(args.directions, directions.k)
    strengths = strengths_for(args.strength, args.steps)
    figure = edit_grid(generator, seeds, directions, indices, strengths, psi=psi, noise=args.noise or "fixed",
                       progress=_progress_bar("editing"))
    figure.save(args.out)
    first, last = directions.layers
    return (f"wrote {args.out}: {len(seeds)} seeds x {len(indices)} directions x {len(strengths)} strengths "
            f"(SeFa, layers {first}-{last}) in {time.perf_counter() - start:.2f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(run(args))
    except (ValueError, OSError, RuntimeError) as exc:  # weights, input and device errors: one line, no traceback
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
