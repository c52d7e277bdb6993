"""Reconstruction quality of one image against another: PSNR and SSIM.

SSIM is Wang et al. 2004 ("Image Quality Assessment: From Error Visibility to Structural
Similarity", section III-C): an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01 L)^2``,
``C2 = (0.03 L)^2`` with ``L = 255``, computed per RGB channel over the valid window positions and
averaged. Images smaller than the window use a window of their own (odd) size. Both functions take
uint8 ``[H, W, 3]`` arrays (or tensors), the bytes a saved PNG holds.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim"]


def _float(image) -> torch.Tensor:
    x = torch.as_tensor(np.array(image)).to(torch.float64)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {tuple(x.shape)}")
    return x.permute(2, 0, 1).unsqueeze(0)                                  # [1, 3, H, W]


def psnr(image, reference) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    mse = float((_float(image) - _float(reference)).square().mean())
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(image, reference, *, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity in [-1, 1] (1 for identical images)."""
    x, y = _float(image), _float(reference)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    size = min(window, x.shape[-1] - (x.shape[-1] + 1) % 2, x.shape[-2] - (x.shape[-2] + 1) % 2)
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=3)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())
