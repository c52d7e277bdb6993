"""Pictures in and out of the projector: an image file's bytes decoded exactly as ``data_prep`` stores
training images (``load_target``), and the target | reconstruction picture (``before_after``). Used by
``python -m app.project`` (``app.projection.cli``) and the "Your image" tab (``app.projection.ui``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..video import upscale_nearest

__all__ = ["load_target", "before_after"]


def load_target(data: bytes, resolution: int, *, name: str = "image", crop: str = "center",
                background: tuple[int, int, int] = (255, 255, 255), max_pixels: int | None = None,
                allow_svg: bool = False) -> np.ndarray:
    """Image bytes -> uint8 ``[R, R, 3]`` exactly as data_prep would store it. Raises ValueError (one line)."""
    from data_prep.decode import DEFAULT_MAX_PIXELS, decode
    from data_prep.errors import DataPrepError, SkipImage
    from data_prep.resize import square

    try:
        if allow_svg and data.lstrip()[:5] in (b"<svg ", b"<?xml") and b"<svg" in data[:4096]:
            from data_prep.openmoji import render_svg

            data = render_svg(data, resolution)
        image = decode(data, background=background, crop=crop, draft_square=2 * resolution,
                       max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        return square(image, resolution, crop=crop, background=background, upscale=True)
    except SkipImage as skip:
        raise ValueError(f"{name}: cannot use this image ({skip.reason}: {skip.detail or 'no detail'})") from None
    except DataPrepError as exc:
        raise ValueError(f"{name}: {exc}") from None


def before_after(target: np.ndarray, reconstruction: np.ndarray, *, min_size: int = 256, gap: int = 8) -> Image.Image:
    """Side by side, enlarged with nearest-neighbour so small models stay crisp."""
    pair = upscale_nearest(np.stack([target, reconstruction]), min_size=min_size)
    h, w = pair.shape[1:3]
    canvas = Image.new("RGB", (2 * w + gap, h), (255, 255, 255))
    canvas.paste(Image.fromarray(pair[0]), (0, 0))
    canvas.paste(Image.fromarray(pair[1]), (w + gap, 0))
    return canvas
