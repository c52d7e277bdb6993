"""Write frames as MP4 (H.264 via imageio-ffmpeg's bundled ffmpeg) and GIF (Pillow).

Browsers play H.264 only in ``yuv420p``, which needs even width and height, and they blur tiny
videos when scaling them up; so frames smaller than ``min_size`` are first enlarged by an integer
factor with nearest-neighbour sampling (crisp pixels, exact colours). GIF delays are stored in
1/100 s, so fps above 50 is approximated, and many viewers slow down delays below 20 ms.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["upscale_nearest", "write_mp4", "write_gif", "write_video"]


def upscale_nearest(frames: np.ndarray, *, min_size: int = 256) -> np.ndarray:
    """``[T, H, W, 3]`` -> repeated by the smallest integer factor making ``min(H, W) >= min_size``, even sides."""
    factor = max(1, math.ceil(min_size / min(frames.shape[1:3])))
    if factor > 1:
        frames = frames.repeat(factor, axis=1).repeat(factor, axis=2)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:  # yuv420p subsamples chroma 2x2: pad odd sides by one edge row/column
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(frames)


def write_mp4(frames: np.ndarray, path: str | os.PathLike, *, fps: float, min_size: int = 256) -> Path:
    """H.264 / yuv420p MP4 with the ``moov`` atom up front (plays while loading); returns ``path``."""
    import imageio_ffmpeg  # deferred: only video needs it

    frames = upscale_nearest(frames, min_size=min_size)
    h, w = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=8,
        macro_block_size=2, output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
    writer.send(None)  # start the ffmpeg process
    try:
        for frame in frames:
            writer.send(frame.tobytes())
    finally:
        writer.close()
    return Path(path)


def write_gif(frames: np.ndarray, path: str | os.PathLike, *, fps: float, min_size: int = 256) -> Path:
    """Looping GIF (adaptive palette per frame); returns ``path``."""
    frames = upscale_nearest(frames, min_size=min_size)
    images = [Image.fromarray(f) for f in frames]
    duration = max(10, round(1000 / fps / 10) * 10)  # GIF stores centiseconds
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)
    return Path(path)


def write_video(frames: np.ndarray, path: str | os.PathLike, *, fps: float, min_size: int = 256) -> Path:
    """Pick the writer from the suffix: ``.mp4`` or ``.gif``. Grayscale and RGBA frames become RGB
    (RGBA composited on white): neither format keeps an alpha channel we could rely on."""
    if frames.shape[-1] != 3:
        import torch

        from progan.images import uint8_to_rgb

        nchw = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)      # [N, C, H, W]
        frames = uint8_to_rgb(nchw).permute(0, 2, 3, 1).numpy()                        # [N, H, W, 3]
    suffix = Path(path).suffix.lower()
    if suffix == ".mp4":
        return write_mp4(frames, path, fps=fps, min_size=min_size)
    if suffix == ".gif":
        return write_gif(frames, path, fps=fps, min_size=min_size)
    raise ValueError(f"video output must end in .mp4 or .gif, got {str(path)!r}")
