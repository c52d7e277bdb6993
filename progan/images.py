"""Generator output as pixels: [-1, 1] floats -> the uint8 bytes a saved PNG holds, and grids of them.

The one conversion used by the training sample grids, the metrics and the app, so all see identical
pixels. Models may have 1 (grayscale), 3 (RGB) or 4 (RGBA, straight alpha) image channels; where RGB is
needed (the Inception metrics, videos) ``uint8_to_rgb`` replicates gray and composites RGBA onto a
background (white unless chosen).
"""
from __future__ import annotations

import math

import torch
from PIL import Image

__all__ = ["images_to_uint8", "to_uint8", "make_grid", "PIL_MODES", "to_pil", "uint8_to_rgb"]

# image_channels -> the PIL mode an image is saved in (grayscale, RGB, RGBA with straight alpha)
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, the same bytes a saved PNG would hold (NVIDIA's rounding).

    The one definition used by sample grids, the metrics and the app, so all see identical pixels.
    """
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` floats in [-1, 1] -> uint8 ``[N, H, W, C]`` on CPU."""
    return images_to_uint8(images).permute(0, 2, 3, 1).cpu()


def to_pil(array) -> Image.Image:
    """uint8 ``[H, W, C]`` (numpy or tensor; C = 1, 3, 4) -> a PIL image in mode L, RGB or RGBA."""
    array = array.numpy() if isinstance(array, torch.Tensor) else array
    channels = array.shape[-1]
    if channels not in PIL_MODES:
        raise ValueError(f"images must have 1, 3 or 4 channels, got shape {tuple(array.shape)}")
    return Image.fromarray(array[..., 0] if channels == 1 else array, PIL_MODES[channels])


def make_grid(images: torch.Tensor, *, columns: int | None = None) -> Image.Image:
    """uint8 ``[N, H, W, C]`` -> one PIL image (mode L, RGB or RGBA), row-major."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = torch.zeros(rows * h, columns * w, c, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
    return to_pil(canvas.numpy())


def uint8_to_rgb(images: torch.Tensor, *, background: tuple[int, int, int] = (255, 255, 255)) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` with C = 1, 3 or 4 -> uint8 ``[N, 3, H, W]``.

    C = 1: the gray value in all three channels. C = 3: unchanged (the same tensor). C = 4: "over"
    compositing of straight alpha onto ``background``, ``(a * rgb + (255 - a) * bg) / 255`` rounded
    to nearest in integers (what PIL's ``alpha_composite`` onto an opaque colour gives, +-1).
    """
    channels = images.shape[1]
    if channels == 3:
        return images
    if channels == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels != 4:
        raise ValueError(f"images must have 1, 3 or 4 channels, got shape {tuple(images.shape)}")
    if len(background) != 3 or not all(0 <= int(v) <= 255 for v in background):
        raise ValueError(f"background must be three integers 0..255, got {background!r}")
    rgb, alpha = images[:, :3].int(), images[:, 3:].int()                    # [N, 3, H, W], [N, 1, H, W]
    bg = torch.tensor([int(v) for v in background], dtype=torch.int32, device=images.device).view(1, 3, 1, 1)
    return ((alpha * rgb + (255 - alpha) * bg + 127) // 255).to(torch.uint8)
