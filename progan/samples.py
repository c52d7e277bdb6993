"""Sample grids from fixed latents, written as PNG (uint8 exactly as saved images elsewhere)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .export import atomic_write_bytes

__all__ = ["images_to_uint8", "to_uint8", "make_grid", "save_sample_grid"]


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


@torch.no_grad()
def save_sample_grid(generator: torch.nn.Module, z: torch.Tensor, path: Path, *, stage: int, alpha: float,
                     full_resolution: int) -> None:
    device = next(generator.parameters()).device
    kwargs = {"noise_mode": "const"} if hasattr(generator, "synthesis") else {}
    images = generator(z.to(device), stage=stage, alpha=alpha, **kwargs)
    if images.shape[-1] != full_resolution:  # early stages shown at the final size, blocky on purpose
        images = F.interpolate(images, size=full_resolution, mode="nearest")
    buffer = io.BytesIO()
    make_grid(to_uint8(images)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
