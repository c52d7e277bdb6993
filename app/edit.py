"""SeFa edits as figures: seed x direction x strength grids (``app.generate edit``), and their CLI options.

Directions and the edit itself are ``app.directions`` (Shen & Zhou, CVPR 2021, section 3.2); here a
grid is laid out with one row per (seed, direction) and one column per strength, labelled on the
left with the seed and direction, and on top with the strength in sigmas.
"""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from .directions import Directions, edit_images
from .keys import Key
from .limits import check_int, check_range

__all__ = ["parse_indices", "strengths_for", "edit_grid", "add_edit_parser", "MAX_STRENGTH"]

MAX_STRENGTH = 20.0  # sigmas; far beyond anything meaningful, but bounded


def parse_indices(text: str, k: int) -> list[int]:
    """``"0-4"`` or ``"0,2,5"`` -> direction indices below ``k``; raises ValueError (one line)."""
    out: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        first, _, last = part.partition("-")
        if not first.strip().isdigit() or (last and not last.strip().isdigit()):
            raise ValueError(f'cannot read direction {part!r}: write e.g. "0-4" or "0,2,5"')
        lo, hi = int(first), int(last or first)
        if hi < lo or hi >= k:
            raise ValueError(f"directions must lie in 0-{k - 1} (--k {k}), got {part!r}")
        out.extend(range(lo, hi + 1))
    return out


def strengths_for(strength: float, steps: int) -> list[float]:
    """``steps`` strengths evenly from ``-strength`` to ``+strength`` (SeFa's start/end distance and step)."""
    strength = check_range("--strength", strength, 0.0, MAX_STRENGTH)
    steps = check_int("--steps", steps, 2, 21)
    return [float(x) for x in np.linspace(-strength, strength, steps)]


def edit_grid(generator: nn.Module, keys: Sequence[Key], directions: Directions, indices: Sequence[int],
              strengths: Sequence[float], *, psi: float = 1.0, noise: str = "fixed", cell: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> Image.Image:
    """Rows: every (key, direction); columns: strengths. Cells enlarged (nearest) to ``cell`` px."""
    r = generator.config.resolution
    cell = cell or r * max(1, -(-64 // r))
    left, top, gap = 92, 16, 2
    rows = [(key, d) for key in keys for d in indices]
    canvas = Image.new("RGB", (left + len(strengths) * (cell + gap), top + len(rows) * (cell + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, s in enumerate(strengths):
        draw.text((left + c * (cell + gap) + 2, 2), f"{s:+g} sigma", fill="black")
    for i, (key, d) in enumerate(rows):
        table = [[0.0] * d + [s] for s in strengths]                     # only direction d moves
        images = edit_images(generator, key, directions, table, psi=psi, noise=noise)
        y = top + i * (cell + gap)
        name = f"seed {key}" if isinstance(key, int) else "image"
        draw.text((2, y + cell // 2 - 12), f"{name}\ndirection {d}", fill="black")
        for c, image in enumerate(images):
            canvas.paste(_rgb(image).resize((cell, cell), Image.NEAREST), (left + c * (cell + gap), y))
        if progress is not None:
            progress(i + 1, len(rows))
    return canvas


def _rgb(image: np.ndarray) -> Image.Image:
    """``[H, W, C]`` uint8 with C = 1, 3 or 4 -> an RGB picture (grey replicated, alpha dropped)."""
    image = np.asarray(image)
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")


def add_edit_parser(commands, common: argparse.ArgumentParser) -> None:
    """The ``edit`` subcommand of ``app.generate``."""
    edit = commands.add_parser("edit", parents=[common],
                               help="SeFa edits: rows seed x direction, columns strength (.png/.jpg/.webp)")
    edit.add_argument("--seeds", default="0-3", help='seeds (or "image" with --latent) to edit')
    edit.add_argument("--layers", default="all", help='layer range the directions come from and act on ("0-3")')
    edit.add_argument("--k", type=int, default=10,
                      help="directions computed (cached per weights, layers, k; default: 10)")
    edit.add_argument("--directions", default="0-4", help='which directions to show, e.g. "0-4" or "0,3"')
    edit.add_argument("--strength", type=float, default=3.0, help="columns go from -S to +S sigmas (default: 3)")
    edit.add_argument("--steps", type=int, default=5, help="columns (strengths) per row, 2-21")
    edit.add_argument("--directions-file", default=None,
                      help="use this app.directions file instead of the cache (must match the weights)")
