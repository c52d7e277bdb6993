"""Square crop (or pad), high-quality resize, and the ProGAN pyramid of 2x2 box filters.

Karras et al. 2018 (ProGAN), Appendix: every lower resolution of the training set is the 2x2 box
average of the one above, so a stage-k real image equals the downsampled stage-(k+1) real image
the discriminator sees during fade-in. We keep that exactly, in integers, with round-half-up.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import SkipImage

# Image.resize(reducing_gap=3) first shrinks by an integer factor with a box filter, then runs
# Lanczos on an image at least 3x the target: Pillow documents this as indistinguishable from a
# full Lanczos pass while being several times faster on large photos.
REDUCING_GAP = 3.0


def is_power_of_two(value: int) -> bool:
    return isinstance(value, int) and value >= 4 and value & (value - 1) == 0


def pyramid_resolutions(resolution: int, *, pyramid: bool = True) -> list[int]:
    """[resolution, resolution/2, ..., 4] (or just [resolution]), largest first."""
    if not pyramid:
        return [resolution]
    return [resolution >> k for k in range(resolution.bit_length()) if resolution >> k >= 4]


def square(
    image: Image.Image,
    resolution: int,
    *,
    crop: str = "center",
    background: tuple[int, int, int] = (255, 255, 255),
    upscale: bool = False,
) -> np.ndarray:
    """L, RGB or RGBA image of any shape -> uint8 array [resolution, resolution, C] (C = 1, 3, 4).

    crop="center" cuts the largest centred square; crop="pad" letterboxes the whole image onto a
    square of `background` (its luma for L; fully transparent for RGBA). Inputs whose square is
    smaller than `resolution` are skipped unless `upscale` is set (then Lanczos upsamples them;
    Pillow resizes RGBA in premultiplied alpha, so hidden colours do not bleed).
    """
    channels = {"L": 1, "RGB": 3, "RGBA": 4}.get(image.mode)
    if channels is None:
        raise ValueError(f"square() takes L, RGB or RGBA images, got mode {image.mode}")
    width, height = image.size
    side = min(width, height) if crop == "center" else max(width, height)
    if side < resolution and not upscale:
        raise SkipImage("too_small", f"{width}x{height}: square side {side} < {resolution}")
    if crop == "center":
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
    elif crop == "pad":
        fill = {"L": Image.new("RGB", (1, 1), background).convert("L").getpixel((0, 0)),
                "RGB": background, "RGBA": (0, 0, 0, 0)}[image.mode]
        canvas = Image.new(image.mode, (side, side), fill)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image, box = canvas, (0, 0, side, side)
    else:
        raise ValueError(f"crop must be 'center' or 'pad', got {crop!r}")
    if side == resolution:
        # Already the right size: cropping only, no resampling, so the pixels stay untouched.
        out = image.crop(box) if box != (0, 0, width, height) else image
    else:
        gap = REDUCING_GAP if side > resolution else None
        out = image.resize((resolution, resolution), Image.LANCZOS, box=box, reducing_gap=gap)
    return np.asarray(out, dtype=np.uint8).reshape(resolution, resolution, channels)


def box_downsample(images: np.ndarray) -> np.ndarray:
    """2x2 box filter on uint8 [..., H, W] -> [..., H/2, W/2], rounding halves up.

    Summing four uint8 values fits in uint16; (sum + 2) // 4 is the exact rounded mean, the same
    bytes on every machine (no float arithmetic involved).
    """
    x = images.astype(np.uint16)
    total = x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]
    return ((total + 2) >> 2).astype(np.uint8)


def build_pyramid(top: np.ndarray, resolutions: list[int]) -> dict[int, np.ndarray]:
    """uint8 [R, R, C] -> {r: contiguous uint8 [C, r, r]} for every r in `resolutions`.

    Every channel, alpha included, is box-filtered on its own (straight, not premultiplied alpha):
    that is exactly what the discriminator's fade-in does to a batch (``downsample2x``), so the
    pyramid property above holds for RGBA too.
    """
    level = np.ascontiguousarray(top.transpose(2, 0, 1))  # [C, R, R]: what the Dataset returns
    levels = {}
    for resolution in sorted(resolutions, reverse=True):
        while level.shape[-1] > resolution:
            level = box_downsample(level)
        levels[resolution] = level
    return levels
