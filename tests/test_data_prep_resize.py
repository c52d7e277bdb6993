"""data_prep.resize.square with crop="pad": where the whole image lands on its letterbox square.

The image already has the target side as its long side, so nothing is resampled and every pixel can be
compared exactly: the content sits centred along the short side (the odd pixel of padding goes after it,
``(side - short) // 2`` before) and fills the long side; the rest is the background.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data_prep.resize import square

GREEN = (0, 255, 0)


@pytest.mark.parametrize("width, height", [(10, 4), (10, 5), (4, 10), (5, 10)])
def test_pad_centres_a_landscape_or_portrait_image_pixel_exactly(width, height):
    """A random WxH pattern (no pure green in it) padded to 10x10: landscape 10x5 gets rows 0-1 green, rows 2-6
    the pattern, rows 7-9 green (2 above, 3 below); portrait 5x10 the same in columns; 10x4 and 4x10 get 3 and 3."""
    rng = np.random.default_rng(width * 100 + height)
    pattern = rng.integers(0, 200, (height, width, 3), dtype=np.uint8)
    out = square(Image.fromarray(pattern), 10, crop="pad", background=GREEN)
    expected = np.empty((10, 10, 3), np.uint8)
    expected[:] = GREEN
    top, left = (10 - height) // 2, (10 - width) // 2          # one of them is 0: the long side fills the square
    for y in range(height):
        for x in range(width):
            expected[top + y, left + x] = pattern[y, x]
    np.testing.assert_array_equal(out, expected)


def test_build_pyramid_halves_down_to_each_resolution_and_returns():
    """``build_pyramid`` of an 8x8 image to 8, 4 and 1: each level the rounded 2x2 means of the one above
    (uint8 ``(sum + 2) // 4``), in [C, R, R]. Run under a watchdog: a level that stops shrinking would
    loop forever, and the test fails in seconds instead of hanging the suite."""
    import threading

    from data_prep.resize import build_pyramid

    top = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(build_pyramid(top, [1, 8, 4])), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "build_pyramid did not return within 10 s"

    def halve(x: np.ndarray) -> np.ndarray:
        c, r = x.shape[0], x.shape[1] // 2
        return ((x.astype(np.int64).reshape(c, r, 2, r, 2).sum((2, 4)) + 2) // 4).astype(np.uint8)

    expected = {8: top.transpose(2, 0, 1)}
    expected[4] = halve(expected[8])
    expected[1] = halve(halve(expected[4]))
    assert sorted(result) == [1, 4, 8]
    for r in (8, 4, 1):
        np.testing.assert_array_equal(result[r], expected[r])
