"""Sample grids from fixed latents, written as PNG (uint8 exactly as saved images elsewhere).

Generated in batches, with a stop check between them: a stop request during a large grid at a high
resolution gives way within one batch, and nothing is written (the trainer saves its checkpoint first).
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..hub.export import atomic_write_bytes
from ..images import make_grid, to_uint8

__all__ = ["save_sample_grid"]


@torch.no_grad()
def save_sample_grid(generator: torch.nn.Module, z: torch.Tensor, path: Path, *, stage: int, alpha: float,
                     full_resolution: int, batch_size: int = 16, labels: torch.Tensor | None = None,
                     should_stop: Callable[[], bool] | None = None) -> bool:
    """Write the grid of `generator(z)` to `path` (a conditional generator: cell i of class `labels[i]`);
    False (nothing written) if `should_stop()` turned true."""
    device = next(generator.parameters()).device
    kwargs = {"noise_mode": "const"} if hasattr(generator, "synthesis") else {}
    batches = []
    for start in range(0, len(z), batch_size):
        if should_stop is not None and should_stop():
            return False
        if labels is not None:  # conditional: one class per cell
            kwargs["labels"] = labels[start:start + batch_size].to(device)
        images = generator(z[start:start + batch_size].to(device), stage=stage, alpha=alpha, **kwargs)
        if images.shape[-1] != full_resolution:  # early stages shown at the final size, blocky on purpose
            images = F.interpolate(images, size=full_resolution, mode="nearest")
        batches.append(to_uint8(images))  # [B, R, R, 3] uint8
    buffer = io.BytesIO()
    make_grid(torch.cat(batches)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return True
