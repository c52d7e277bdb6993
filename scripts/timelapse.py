"""A training run as a film: its fixed-latent sample grids, in order, as an MP4 and a GIF.

    python scripts/timelapse.py RUN_DIR [--out PREFIX] [--fps 12] [--gif-frames 120] [--min-size 256]

The trainer writes ``RUN_DIR/samples/grid-<kimg>kimg.png`` from the same latents every
``--sample-kimg`` (so a frame-to-frame change is the model changing, not the latents), and
``RUN_DIR/log.jsonl`` with the resolution and fade-in alpha at every log step. Each frame gets a band
under it stamped with its kimg and the resolution being trained then (from the log; the trainer
already shows early stages enlarged to the final size, so the grid's own size does not tell).
Grids of different pixel sizes (another trainer, or a run continued with another preset) are
scaled to the last grid's size: nearest-neighbour when enlarging, so low-resolution stages stay
visibly blocky. Writes ``PREFIX.mp4`` (every frame, H.264, streamed to ffmpeg) and ``PREFIX.gif``
(at most ``--gif-frames`` frames, evenly spaced, the last one always in); default
``PREFIX = RUN_DIR/timelapse``. Both are written to temporary files and renamed, so an interrupted
run leaves no half video.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["find_grids", "read_schedule", "stamp", "frames", "main"]

_GRID = re.compile(r"^grid-(\d+(?:\.\d+)?)kimg\.png$")
BAND = 22  # pixels of the stamp band under each frame


def find_grids(run: Path) -> list[tuple[float, Path]]:
    """``(kimg, path)`` of every ``samples/grid-*kimg.png``, in kimg order; raises ValueError (one line)."""
    folder = run / "samples"
    grids = sorted((float(m.group(1)), p) for p in folder.glob("grid-*kimg.png") if (m := _GRID.match(p.name)))
    if not grids:
        raise ValueError(f"no sample grids (samples/grid-*kimg.png) in {run}")
    return grids


def read_schedule(run: Path) -> list[tuple[float, int, float]]:
    """``(kimg, resolution, alpha)`` from ``log.jsonl`` in kimg order; [] without a log. Broken lines
    (a run killed mid-write) are skipped."""
    path = run / "log.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            out.append((float(record["kimg"]), int(record["resolution"]), float(record.get("alpha", 1.0))))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out)


def _at(schedule: list[tuple[float, int, float]], kimg: float) -> tuple[int, float] | None:
    """Resolution and alpha being trained at ``kimg``: the last log record at or before it (the first one
    for a grid written before any log record, i.e. at the start)."""
    if not schedule:
        return None
    i = bisect.bisect_right([k for k, _, _ in schedule], kimg + 1e-9) - 1
    _, resolution, alpha = schedule[max(i, 0)]
    return resolution, alpha


def stamp(image: Image.Image, text: str) -> np.ndarray:
    """``image`` with a black band of ``BAND`` pixels under it carrying ``text`` in white: ``[H + BAND, W, 3]``."""
    canvas = Image.new("RGB", (image.width, image.height + BAND), "black")
    canvas.paste(image.convert("RGB"), (0, 0))
    ImageDraw.Draw(canvas).text((6, image.height + 5), text, fill="white")
    return np.asarray(canvas)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    enlarging = image.width < size[0]
    return image.resize(size, Image.Resampling.NEAREST if enlarging else Image.Resampling.BOX)


def frames(run: Path, *, min_size: int = 256):
    """Yield ``(kimg, stamped frame [H + BAND, W, 3] uint8)`` for every grid, all at the last grid's size,
    enlarged (nearest, whole factor) so the short side is at least ``min_size`` before the stamp is drawn
    (so the text has room and stays sharp)."""
    grids = find_grids(run)
    schedule = read_schedule(run)
    with Image.open(grids[-1][1]) as last:
        size = last.size
    factor = max(1, -(-min_size // min(size)))
    for kimg, path in grids:
        with Image.open(path) as grid:
            image = _fit(grid.convert("RGB"), size)
        if factor > 1:
            image = image.resize((size[0] * factor, size[1] * factor), Image.Resampling.NEAREST)
        at = _at(schedule, kimg)
        text = f"{kimg:.1f} kimg"
        if at is not None:
            resolution, alpha = at
            text += f" | {resolution} px" + (f", fade-in {alpha:.2f}" if alpha < 1.0 else "")
        yield kimg, stamp(image, text)


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


def write(run: Path, prefix: Path, *, fps: float, gif_frames: int, min_size: int, progress: bool = True) -> tuple[Path, Path, int]:
    """Write ``PREFIX.mp4`` and ``PREFIX.gif``; returns their paths and the frame count."""
    import imageio_ffmpeg
    from tqdm.auto import tqdm

    from app.video import upscale_nearest, write_gif

    total = len(find_grids(run))
    keep = set(np.linspace(0, total - 1, min(gif_frames, total)).round().astype(int).tolist())
    mp4, gif = prefix.with_suffix(".mp4"), prefix.with_suffix(".gif")
    tmp_mp4, tmp_gif = _temp_beside(mp4), _temp_beside(gif)
    writer, gif_list = None, []
    try:
        for i, (_, frame) in enumerate(tqdm(frames(run, min_size=min_size), total=total, desc="timelapse", unit="frame",
                                            disable=not progress)):
            big = upscale_nearest(frame[None], min_size=1)[0]  # already enlarged; pads odd sides for yuv420p
            if writer is None:
                writer = imageio_ffmpeg.write_frames(
                    str(tmp_mp4), (big.shape[1], big.shape[0]), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                    quality=8, macro_block_size=2, output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
                writer.send(None)
            writer.send(np.ascontiguousarray(big).tobytes())
            if i in keep:
                gif_list.append(frame)
        writer.close()
        writer = None
        write_gif(np.stack(gif_list), tmp_gif, fps=max(1.0, fps * len(gif_list) / total), min_size=1)
        os.replace(tmp_mp4, mp4)
        os.replace(tmp_gif, gif)
    finally:
        if writer is not None:
            writer.close()
        for tmp in (tmp_mp4, tmp_gif):
            tmp.unlink(missing_ok=True)
    return mp4, gif, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="training run directory (with samples/ and log.jsonl)")
    parser.add_argument("--out", type=Path, default=None, help="output prefix (default: RUN/timelapse)")
    parser.add_argument("--fps", type=float, default=12.0, help="MP4 frames per second (the GIF lasts as long)")
    parser.add_argument("--gif-frames", type=int, default=120, help="at most this many frames in the GIF")
    parser.add_argument("--min-size", type=int, default=256, help="enlarge (nearest) so the short side is at least this")
    args = parser.parse_args(argv)
    if not 0.5 <= args.fps <= 60 or args.gif_frames < 1 or not 1 <= args.min_size <= 4096:
        print("error: --fps must be in [0.5, 60], --gif-frames >= 1 and --min-size in [1, 4096]", file=sys.stderr)
        return 2
    try:
        if not args.run.is_dir():
            raise ValueError(f"{args.run}: no such run directory")
        if not read_schedule(args.run):
            print(f"note: no readable {args.run / 'log.jsonl'}; frames are stamped with kimg only", file=sys.stderr)
        mp4, gif, count = write(args.run, args.out or args.run / "timelapse", fps=args.fps,
                                gif_frames=args.gif_frames, min_size=args.min_size)
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"wrote {mp4} and {gif}: {count} grids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
