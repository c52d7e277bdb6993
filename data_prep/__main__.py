"""Command line: `python -m data_prep SOURCE --out DIR --resolution 256 [...]`.

SOURCE is a folder (searched recursively), a .zip, a .tar(.gz/.bz2/.xz), or the word `openmoji`
for the built-in emoji set (write `./openmoji` for a folder of that name). User errors print one
line `error: ...` and exit with status 2; bad images never stop the run, they are listed in
DIR/manifest.json.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .errors import DataPrepError
from .pipeline import prepare
from .resize import is_power_of_two
from .sources import DEFAULT_MAX_BYTES


def _positive_mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 MiB, got {value}")
    return value


def _resolution(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not is_power_of_two(value):
        raise argparse.ArgumentTypeError(
            f"must be a power of two >= 4 (4, 8, ..., 1024), got {text}")
    return value


def _color(text: str) -> tuple[int, int, int]:
    """'255,255,255', '#ffffff' or 'ffffff'."""
    try:
        if "," in text:
            rgb = tuple(int(part) for part in text.split(","))
        else:
            hex_text = text.removeprefix("#")
            rgb = tuple(int(hex_text[i:i + 2], 16) for i in (0, 2, 4)) if len(hex_text) == 6 else ()
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise argparse.ArgumentTypeError(f"expected R,G,B (0..255) or #rrggbb, got {text}")
    return rgb  # type: ignore[return-value]


_EXAMPLES = """examples:
  python -m data_prep ~/photos --out data/photos-256 --resolution 256
  python -m data_prep faces.zip --out data/faces-1024 --resolution 1024 --dedupe
  python -m data_prep openmoji --out data/openmoji-64 --resolution 64
  python -m data_prep ~/pets --out data/pets-64 --resolution 64 --labels folders
  python -m data_prep openmoji --out data/openmoji-rgba-64 --resolution 64 --channels 4
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # One line like every other user error, instead of the usage block plus the message.
        print(f"error: {message} (see python -m data_prep --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m data_prep", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Turn an image collection into a uint8 dataset directory for train.py. "
                    "Bad files are skipped and listed in DIR/manifest.json.")
    parser.add_argument("source", help="folder (recursive), .zip, .tar(.gz/.bz2/.xz), or "
                                       "'openmoji' (write ./openmoji for a folder of that name)")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset directory to create")
    parser.add_argument("--resolution", type=_resolution, required=True, metavar="R",
                        help="largest resolution in pixels, a power of two >= 4")
    parser.add_argument("--crop", choices=("center", "pad"), default="center",
                        help="center: largest centred square (default); "
                             "pad: letterbox onto --background")
    parser.add_argument("--background", type=_color, default=(255, 255, 255),
                        metavar="COLOR", help="R,G,B or #rrggbb under transparent pixels and "
                                              "padding (default: white)")
    parser.add_argument("--channels", type=int, choices=(1, 3, 4), default=3,
                        help="1: grayscale (PIL 'L'), 3: RGB (default), 4: RGBA keeping the alpha of "
                             "PNGs/WebPs (images without alpha become opaque)")
    parser.add_argument("--no-pyramid", dest="pyramid", action="store_false",
                        help="store only R, not every power of two from R down to 4")
    parser.add_argument("--dedupe", action="store_true",
                        help="drop images whose final pixels equal an earlier image's")
    parser.add_argument("--upscale", action="store_true",
                        help="upsample images smaller than R instead of skipping them")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes (default: all usable cores)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N images, in the stable order")
    parser.add_argument("--max-mib", type=_positive_mib, default=DEFAULT_MAX_BYTES >> 20, metavar="MIB",
                        help="skip any file or archive member larger than this (default %(default)s MiB); "
                             "the manifest lists each with reason too_many_bytes")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset at DIR (never a non-dataset directory)")
    parser.add_argument("--labels", default=None, metavar="folders|FILE",
                        help="record a class per image for conditional training (train.py --cond): 'folders' "
                             "(each image's top-level subfolder) or a .csv/.json file mapping names to classes; "
                             "the built-in openmoji set always gets its Unicode emoji groups")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    # SIGTERM (kill, a job scheduler's time limit) would end Python without unwinding; raising
    # KeyboardInterrupt instead runs the writer's cleanup, so no tmp directory is left behind.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        prepare(args.source, args.out, resolution=args.resolution, pyramid=args.pyramid,
                crop=args.crop, background=args.background, dedupe=args.dedupe,
                upscale=args.upscale, workers=args.workers, progress=not args.quiet,
                overwrite=args.overwrite, limit=args.limit, max_bytes=args.max_mib << 20,
                labels=args.labels, channels=args.channels)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
