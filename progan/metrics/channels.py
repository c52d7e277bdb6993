"""Grayscale and RGBA images into an RGB feature network (Inception, Heusel et al. 2017 section 3).

The FID/KID/precision-recall features are defined on RGB images, so images of other channel counts
are turned into RGB first, the same way for real and generated ones (``progan.images.uint8_to_rgb``):
grayscale is replicated into three channels; RGBA is composited ("over", straight alpha) onto a
background colour, white unless the caller chooses another (``evaluate.py --background``). The
numbers therefore measure the images as they look on that background: transparency itself is not
compared, and a different background gives different (not comparable) numbers.
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..images import uint8_to_rgb

__all__ = ["RGBView", "rgb_view"]

WHITE = (255, 255, 255)


class RGBView(nn.Module):
    """``network`` applied to ``uint8_to_rgb(images, background)``: uint8 ``[N, C, H, W]`` (C = 1, 3, 4) -> ``[N, D]``.

    Its ``sha256`` (the statistics-cache key) combines the network's with the background, so cached
    real statistics of an RGBA dataset are never reused for another background.
    """

    def __init__(self, network, *, background: tuple[int, int, int] = WHITE) -> None:
        super().__init__()
        self.network = network
        self.background = tuple(int(v) for v in background)
        inner = getattr(network, "sha256", None)
        self.sha256 = (hashlib.sha256(f"{inner}|rgb-view|background={self.background}".encode()).hexdigest()
                       if inner else None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(uint8_to_rgb(images, background=self.background))             # [N, D]

    def extra_repr(self) -> str:
        return f"background={self.background}"


def rgb_view(network, *, channels: tuple[int, ...], background: tuple[int, int, int] = WHITE):
    """``network`` itself when every image source is RGB (caches stay as they were), else an ``RGBView``."""
    if all(c == 3 for c in channels):
        return network
    return RGBView(network, background=background)
