"""Pixels shared by several test files: reading what the app and CLIs write back, and writing small labelled
source trees for data_prep (``write_images``, ``labelled_source``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def read_frames(path) -> np.ndarray:
    """``[F, H, W, 3]`` uint8: every frame of an image file (a GIF's frames; one for a PNG/JPEG)."""
    with Image.open(path) as image:
        frames = []
        for i in range(getattr(image, "n_frames", 1)):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)


LABELLED_CLASSES = ("blue", "red")  # the class folders of ``labelled_source``, in data_prep's order


def write_images(folder: Path, count: int, channel: int) -> list[str]:
    """``count`` 16 x 16 PNGs ``00.png``, ``01.png``, ... in ``folder``: grey 30 with ``channel`` at 200 + i
    (so each image's class can be told from its pixels), and a seeded black strip in the left columns."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(channel)
    names = []
    for i in range(count):
        image = np.full((16, 16, 3), 30, np.uint8)
        image[..., channel] = 200 + i
        image[rng.integers(0, 8):, :4] = 0
        Image.fromarray(image).save(folder / f"{i:02d}.png")
        names.append(f"{i:02d}.png")
    return names


def labelled_source(root: Path) -> Path:
    """root/src/blue: 3 images (blue channel), root/src/red: 5 images (red channel), one unlabelled at the top."""
    write_images(root / "src" / "blue", 3, 2)
    write_images(root / "src" / "red", 5, 0)
    write_images(root / "src", 1, 1)
    return root / "src"
