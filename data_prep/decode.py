"""Bytes of one image file -> an upright RGB (or L / RGBA, see `channels`) PIL image, whatever the file held.

Real collections mix JPEGs with EXIF rotation, PNGs with alpha, palette GIFs (some animated),
grayscale, CMYK and 16-bit scans, plus files that are truncated, empty or not images at all. This
module turns each into RGB or raises `SkipImage` with a stable reason; it never lets a bad file
crash the run. stylegan2-ada's dataset_tool fails on exactly these cases (no EXIF, no alpha, a
corrupt file aborts the whole folder).

`channels` picks the stored mode: 3 = RGB (alpha composited onto the background), 1 = grayscale
(the same RGB composite, then PIL's 'L', ITU-R 601 luma), 4 = RGBA with straight alpha kept (images
without alpha become fully opaque; fully transparent pixels get colour 0 so that the hidden colour
a PNG happened to store does not reach the model).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import SkipImage

# PIL refuses images above 2 * MAX_IMAGE_PIXELS (~179 Mpx) as decompression bombs; we keep exactly
# that limit but turn it into a skip reason instead of an exception or a silenced warning.
DEFAULT_MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS

_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Parse the header only (cheap) and apply the size limit before any pixel is decoded."""
    if len(data) == 0:
        raise SkipImage("empty", "zero-byte file")
    try:
        with warnings.catch_warnings():
            # The warning band (1x..2x MAX_IMAGE_PIXELS) is allowed; our own check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise SkipImage("not_image", f"no decoder recognises these {len(data)} bytes") from None
    except Image.DecompressionBombError as error:
        raise SkipImage("too_large", str(error)) from None
    except Exception as error:  # a damaged header can raise almost anything inside a plugin
        raise SkipImage("corrupt", f"{type(error).__name__}: {error}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise SkipImage("corrupt", f"invalid size {width}x{height}")
    if width * height > max_pixels:
        raise SkipImage("too_large", f"{width}x{height} exceeds max_pixels={max_pixels}")
    return image


def request_draft(image: Image.Image, min_square: int, *, crop: str) -> None:
    """Let libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale (DCT-domain, several times faster).

    The scale keeps the square we later cut (short side for "center", long side for "pad") at
    least `min_square` pixels, so a Lanczos pass of 2x or more always follows and the draft's
    block-wise filtering does not show.
    """
    if image.format != "JPEG":
        return
    width, height = image.size
    side = min(width, height) if crop == "center" else max(width, height)
    scale = min_square / side
    if scale < 1:
        image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    # PIL's convert("L") clips 16-bit values at 255 instead of scaling, which turns scans white.
    values = np.asarray(image).astype(np.int64).clip(0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")


def _float_to_l(image: Image.Image) -> Image.Image:
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    # Float TIFFs come as 0..1 or 0..255; the maximum tells which, per image.
    if values.max(initial=0.0) <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.rint(values.clip(0, 255)).astype(np.uint8), "L")


def to_rgb(image: Image.Image, *, background: tuple[int, int, int]) -> Image.Image:
    """Any PIL mode -> RGB; transparent pixels are composited onto `background`."""
    if image.mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_bit_to_l(image)
    elif image.mode == "F":
        image = _float_to_l(image)
    has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            # Composite before resizing: resizing straight alpha would bleed hidden colours.
            base = Image.new("RGBA", rgba.size, (*background, 255))
            return Image.alpha_composite(base, rgba).convert("RGB")
        return image if image.mode == "RGB" else image.convert("RGB")
    except (ValueError, OSError) as error:  # e.g. LAB or exotic TIFF modes PIL cannot convert
        raise SkipImage("unsupported", f"mode {image.mode}: {error}") from None


CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_mode(image: Image.Image, *, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """Any PIL mode -> L (1 channel), RGB (3) or RGBA (4); see the module docstring."""
    if channels == 3:
        return to_rgb(image, background=background)
    if channels == 1:
        return to_rgb(image, background=background).convert("L")
    if channels != 4:
        raise ValueError(f"channels must be 1, 3 or 4, got {channels}")
    if image.mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_bit_to_l(image)
    elif image.mode == "F":
        image = _float_to_l(image)
    try:
        rgba = np.array(image.convert("RGBA"))                      # [H, W, 4], straight alpha
    except (ValueError, OSError) as error:
        raise SkipImage("unsupported", f"mode {image.mode}: {error}") from None
    rgba[rgba[..., 3] == 0, :3] = 0
    return Image.fromarray(rgba, "RGBA")


def decode(
    data: bytes,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    draft_square: int | None = None,
    crop: str = "center",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    channels: int = 3,
) -> Image.Image:
    """Decode `data` into an upright image of `channels` (1: L, 3: RGB, 4: RGBA); `draft_square`
    allows a faster JPEG draft decode."""
    image = open_image(data, max_pixels=max_pixels)
    # Animated GIF/WebP/APNG: Image.open is positioned on frame 0, which is the one we keep.
    if draft_square is not None:
        request_draft(image, draft_square, crop=crop)
    try:
        image.load()
    except Exception as error:  # truncated data, bad CRC, broken Huffman tables, ...
        raise SkipImage("corrupt", f"{type(error).__name__}: {error}") from None
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF must not cost the image: keep the stored orientation
        orientation = 1
    if orientation != 1:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:
            pass
    return to_mode(image, channels=channels, background=background)
