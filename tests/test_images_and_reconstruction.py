"""progan.images.make_grid and progan.metrics.reconstruction (PSNR, SSIM) against values built by hand.

The grid: row-major placement of non-square tiles, checked cell by cell, empty cells black. PSNR:
``10 log10(255^2 / MSE)`` for a known MSE. SSIM: Wang et al. 2004 written out as a direct loop over the
valid window positions (NumPy float64, the Gaussian window normalised to sum 1), on images whose
sides are not square and (one of them) smaller than the 11-pixel window.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from progan.images import make_grid, to_uint8
from progan.metrics.reconstruction import psnr, ssim


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_make_grid_places_tiles_row_major(channels):
    n, h, w, columns = 5, 2, 3, 3                                  # 2 rows: the last row has 2 tiles
    images = torch.stack([torch.full((h, w, channels), 10 * (i + 1), dtype=torch.uint8) for i in range(n)])
    grid = np.asarray(make_grid(images, columns=columns)).reshape(2 * h, columns * w, channels)
    for r in range(2):
        for col in range(columns):
            i = r * columns + col
            cell = grid[r * h:(r + 1) * h, col * w:(col + 1) * w]
            assert (cell == (10 * (i + 1) if i < n else 0)).all(), (r, col)


def test_make_grid_default_columns_is_ceil_sqrt():
    images = torch.arange(1, 8, dtype=torch.uint8).view(7, 1, 1, 1).expand(7, 2, 3, 3).contiguous()
    grid = np.asarray(make_grid(images))                          # ceil(sqrt(7)) = 3 columns, 3 rows
    assert grid.shape == (3 * 2, 3 * 3, 3)
    assert grid[::2, ::3, 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 0, 0]]


def test_to_uint8_rounds_half_up_and_puts_channels_last():
    """[-1, 1] -> uint8 is NVIDIA's floor(127.5 x + 128) clamped (0 -> 128, not 127), and [N, C, H, W] becomes
    [N, H, W, C]: checked element by element in Python floats on a 3-channel 2x3 image of distinct values
    (multiples of 1/256, so 127.5 x is exact in float32 too)."""
    steps = torch.tensor([-300, -256, -255, -2, -1, 0, 1, 2, 3, 64, 200, 255, 256, 257, 300, 1,
                          5, -64])                                  # 18 = 3 channels x 2 rows x 3 columns
    x = (steps.float() / 256).view(1, 3, 2, 3)
    out = to_uint8(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 2, 3, 3)
    for c in range(3):
        for row in range(2):
            for col in range(3):
                value = float(x[0, c, row, col])
                expected = min(255, max(0, math.floor(127.5 * value + 128)))
                assert int(out[0, row, col, c]) == expected, (c, row, col, value)
    assert int(out[0, 1, 2, 0]) == 128                             # x = 0: 127.5 rounds up


def test_psnr_of_a_known_mean_square_error():
    a = np.random.default_rng(1).integers(20, 230, (5, 7, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] += 10                                               # one of 105 values off by 10
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / (100 / 105)), rel=1e-12)


def _ssim_reference(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    height, width = x.shape[:2]
    size = min(window, *(s if s % 2 else s - 1 for s in (height, width)))
    offsets = np.arange(size) - size // 2
    g = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    weights = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(3):
        for top in range(height - size + 1):
            for left in range(width - size + 1):
                px, py = x[top:top + size, left:left + size, c], y[top:top + size, left:left + size, c]
                mx, my = (weights * px).sum(), (weights * py).sum()
                vx, vy = (weights * (px - mx) ** 2).sum(), (weights * (py - my) ** 2).sum()
                cov = (weights * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(13, 15), (8, 12)])              # 11 px window; 7 px for the 8-px side
def test_ssim_matches_a_direct_loop_over_windows(shape):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 41, x.shape) + 15, 0, 255).astype(np.uint8)
    expected = _ssim_reference(x, y)
    assert 0.1 < expected < 0.99
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    """Constant images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), per channel, averaged."""
    a, b = (40, 100, 200), (60, 100, 150)
    x = np.broadcast_to(np.array(a, dtype=np.uint8), (12, 12, 3))
    y = np.broadcast_to(np.array(b, dtype=np.uint8), (12, 12, 3))
    c1 = (0.01 * 255) ** 2
    expected = np.mean([(2 * p * q + c1) / (p * p + q * q + c1) for p, q in zip(a, b)])
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)
