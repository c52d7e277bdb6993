"""Sample grids from fixed latents, written as PNG (uint8 exactly as saved images elsewhere)."""
from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F

from ..hub.export import atomic_write_bytes
from ..images import make_grid, to_uint8

__all__ = ["save_sample_grid"]


@torch.no_grad()
def save_sample_grid(generator: torch.nn.Module, z: torch.Tensor, path: Path, *, stage: int, alpha: float,
                     full_resolution: int, labels: torch.Tensor | None = None) -> None:
    device = next(generator.parameters()).device
    kwargs = {"noise_mode": "const"} if hasattr(generator, "synthesis") else {}
    if labels is not None:  # conditional: one class per cell
        kwargs["labels"] = labels.to(device)
    images = generator(z.to(device), stage=stage, alpha=alpha, **kwargs)
    if images.shape[-1] != full_resolution:  # early stages shown at the final size, blocky on purpose
        images = F.interpolate(images, size=full_resolution, mode="nearest")
    buffer = io.BytesIO()
    make_grid(to_uint8(images)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
