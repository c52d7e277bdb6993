"""Exponential moving average of generator weights (Karras et al. 2018, appendix A.1 / Yazici et al. 2019).

The decay is expressed as a half-life in images, so it does not depend on the batch size:
``beta = 0.5 ** (batch_images / half_life_images)``. During the ramp-up the half-life is capped at
``images_seen * rampup`` (as stylegan2-ada does), so early EMA weights are not dominated by the random
initialisation. Buffers (``w_avg``) are copied, not averaged. The update is one ``torch._foreach_lerp_``
over all parameters (a few fused kernels instead of one launch per tensor on GPU).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ema_beta", "update_ema"]


def ema_beta(batch_images: int, *, half_life_images: float, images_seen: int, rampup: float | None = 0.05) -> float:
    half_life = half_life_images
    if rampup is not None and rampup > 0:
        half_life = min(half_life, images_seen * rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (batch_images / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, *, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * model`` for parameters; buffers copied verbatim."""
    targets = list(ema.parameters())
    torch._foreach_lerp_(targets, [p.detach().to(t.dtype) for t, p in zip(targets, model.parameters())], 1.0 - beta)
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))
