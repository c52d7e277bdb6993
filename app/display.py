"""Images at a viewable size: small generators (16-64 px) are unreadable at native size in a browser.

Display copies are enlarged by a whole factor with nearest-neighbour (pixel replication), so every
generated pixel stays a crisp, equal square and nothing is invented; downloads keep the native size.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["DISPLAY_SIZE", "display_factor", "for_display", "figure_for_display"]

DISPLAY_SIZE = 256  # the short side a display copy reaches at least (models this big are left alone)


def display_factor(side: int, *, target: int = DISPLAY_SIZE) -> int:
    """The whole-number enlargement that brings ``side`` pixels to at least ``target`` (1 if already there)."""
    return max(1, math.ceil(target / max(1, side)))


def for_display(image: np.ndarray, *, target: int = DISPLAY_SIZE) -> np.ndarray:
    """uint8 ``[H, W, C]`` -> the same image enlarged by ``display_factor`` (nearest-neighbour); a
    grayscale ``[H, W, 1]`` comes back as ``[H, W]``, the shape image widgets take for gray."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    factor = display_factor(min(image.shape[:2]), target=target)
    return image if factor == 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def figure_for_display(figure: Image.Image, *, cell: int, target: int = DISPLAY_SIZE) -> Image.Image:
    """A grid/figure of ``cell``-pixel tiles, enlarged so each tile reaches ``target`` (capped at 4x the
    figure's size in pixels, so large grids of small models stay a reasonable download for the browser)."""
    factor = min(display_factor(cell, target=target), 4)
    if factor == 1:
        return figure
    return figure.resize((figure.width * factor, figure.height * factor), Image.Resampling.NEAREST)
