"""Images at a viewable size, enlarged by the browser: the server sends native pixels.

Small generators (16-64 px) are unreadable at native size, but enlarging them on the server made
every response 16x (4x per side) more pixels to PNG-encode, store and send, which cost several times
the generation itself. So the app sends native-size images and the page enlarges them with CSS
``image-rendering: pixelated`` (nearest-neighbour: every generated pixel stays a crisp square and
nothing is invented). Components opt in with ``elem_classes``: ``PIXELATED`` on a gallery (its
thumbnails are already stretched to the cell), ``PIXELATED_FILL`` on an ``gr.Image`` with a ``height``
(stretched to that box, aspect kept). ``CSS`` is passed to ``demo.launch(css=CSS)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CSS", "PIXELATED", "PIXELATED_FILL", "for_display"]

PIXELATED = "pixelated"
PIXELATED_FILL = "pixelated-fill"
CSS = f"""
.{PIXELATED} img, .{PIXELATED_FILL} img {{ image-rendering: pixelated; }}
.{PIXELATED_FILL} img {{ object-fit: contain !important; width: 100% !important; height: 100% !important; }}
"""


def for_display(image: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, C]`` at native size, in the shape image widgets take: a grayscale ``[H, W, 1]``
    comes back as ``[H, W]``; RGB and RGBA are returned as they are."""
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    return image
