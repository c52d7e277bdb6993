"""Image distances for projection that work offline: pixels, a Laplacian pyramid, Inception features.

The published StyleGAN2 projector (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN", section 5 and appendix D) compares VGG16/LPIPS features, which it downloads at run
time. We offer distances that need nothing from the network:

- ``pixel``: mean squared error on [-1, 1] pixels.
- ``lap``: pixel MSE + the Laplacian-pyramid L1 distance of Bojanowski et al. 2018 ("Optimizing the
  Latent Space of Generative Networks", section 3.3, "Lap1"): ``sum_j 2**(-2j) |L^j(x) - L^j(y)|_1``
  over the band-pass levels ``L^j`` of a 5-tap Gaussian pyramid (Burt & Adelson 1983). It weighs
  edges at every scale, so a blurred mean is penalised more than by MSE alone.
- ``lap+inception``: ``lap`` plus the squared distance of the FID Inception-v3 pool features
  (``progan.metrics.inception``, from the ``metrics`` extra; never downloaded). The choice of
  default was made by measurement; see docs/projection.md.

Every distance takes ``[N, 3, H, W]`` float images in [-1, 1] and returns one scalar per batch.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "laplacian_pyramid", "lap1_distance", "make_distance"]

LOSSES = ("pixel", "lap", "lap+inception")
_INCEPTION_WEIGHT = 1e-3  # feature MSE is ~100x pixel MSE at the start of a run; this balances them


def _gaussian_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k = (k[:, None] * k[None, :]) / 256.0
    return k.expand(channels, 1, 5, 5)


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = _gaussian_kernel(x.shape[1], x.device, x.dtype)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, *, levels: int | None = None) -> list[torch.Tensor]:
    """``[N, C, H, W]`` -> band-pass levels (finest first) and the low-pass residual last.

    Stops when the side would drop below 4 px (or after ``levels`` band-pass levels); summing the
    upsampled levels reconstructs ``x`` exactly (each level is ``x_j - up(down(x_j))``).
    """
    out = []
    current = x
    while current.shape[-1] >= 8 and (levels is None or len(out) < levels):
        low = _blur(current)[..., ::2, ::2]                                # [N, C, H/2, W/2]
        up = F.interpolate(low, scale_factor=2.0, mode="nearest")
        out.append(current - _blur(up))
        current = low
    out.append(current)
    return out


def lap1_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bojanowski et al.'s Lap1: ``sum_j 2**(-2j) * mean|L^j(x) - L^j(y)|`` (mean instead of sum per level)."""
    total = x.new_zeros(())
    for j, (a, b) in enumerate(zip(laplacian_pyramid(x), laplacian_pyramid(y))):
        total = total + (a - b).abs().mean() * 4.0 ** -j
    return total


def make_distance(name: str, *, device: torch.device | str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The distance ``d(synth, target)`` called ``name``. Raises ValueError (one line) for unknown names
    and ``FeatureNetworkError`` when ``lap+inception`` is asked for without the ``metrics`` extra."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {name!r}")

    def pixel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x - y).square().mean()

    if name == "pixel":
        return pixel

    def lap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pixel(x, y) + lap1_distance(x, y)

    if name == "lap":
        return lap
    from progan.metrics.inception import load_feature_network

    network = load_feature_network(device=device)
    cache: dict[int, torch.Tensor] = {}

    def lap_inception(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        key = id(y)  # the target is fixed for a whole run: embed it once
        if key not in cache:
            cache.clear()
            cache[key] = network.embed((y + 1) * 127.5).detach()
        features = network.embed(((x + 1) * 127.5).clamp(0, 255))          # [N, 2048]
        return lap(x, y) + _INCEPTION_WEIGHT * (features - cache[key]).square().mean()

    return lap_inception
