"""Reading what the app and CLIs write back as pixels, shared by the tests that compare them."""
from __future__ import annotations

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
