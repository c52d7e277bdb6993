"""Generator output as pixels: [-1, 1] floats -> the uint8 bytes a saved PNG holds, and grids of them.

The one conversion used by the training sample grids, the metrics and the app, so all see identical
pixels.
"""
from __future__ import annotations

import math

import torch
from PIL import Image

__all__ = ["images_to_uint8", "to_uint8", "make_grid"]


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, the same bytes a saved PNG would hold (NVIDIA's rounding).

    The one definition used by sample grids, the metrics and the app, so all see identical pixels.
    """
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` floats in [-1, 1] -> uint8 ``[N, H, W, 3]`` on CPU."""
    return images_to_uint8(images).permute(0, 2, 3, 1).cpu()


def make_grid(images: torch.Tensor, *, columns: int | None = None) -> Image.Image:
    """uint8 ``[N, H, W, 3]`` -> one PIL image, row-major."""
    n, h, w, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = torch.zeros(rows * h, columns * w, 3, dtype=torch.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i]
    return Image.fromarray(canvas.numpy())
