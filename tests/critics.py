"""A non-linear critic and the closed forms of its penalties, shared by the penalty tests.

``D(x) = sum(w * x^2)`` per image has the input gradient ``2 w x``, which differs from point to point:
a penalty taken at the wrong points (fakes instead of reals, reals instead of interpolates) gives
another value and another w-gradient. A linear critic ``<w, x>`` cannot tell (its gradient is w
everywhere). Penalties: WGAN-GP (Gulrajani et al. 2017, section 4), R1 (Mescheder et al. 2018,
section 4.1), DRAGAN (Kodali et al. 2017, section 4).
"""
from __future__ import annotations

import torch
from torch import nn

from progan.training.step import StepContext

__all__ = ["SHAPE", "SquareCritic", "ConstantG", "gp_closed_form", "r1_closed_form", "data", "check_points",
           "make_ctx", "PART"]

PART = {"r1": "d_r1", "wgan_gp": "d_gp", "dragan": "d_dragan"}


class SquareCritic(nn.Module):
    """``D(x) = sum(w * x^2)`` per image -> [N, 1]; its input gradient is ``2 w x``. Records its inputs."""

    def __init__(self, shape: tuple[int, ...], seed: int = 0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.5)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, **_stage) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return (self.w * x.square()).flatten(1).sum(1, keepdim=True)


SHAPE = (3, 4, 4)


def gp_closed_form(w: torch.Tensor, points: torch.Tensor) -> tuple[float, torch.Tensor]:
    """mean_i (||2 w x_i|| - 1)^2 and its gradient in w (points are constants)."""
    grads = 2 * w * points                                                  # [N, C, H, W]
    norms = grads.flatten(1).norm(dim=1)                                    # [N]
    value = (norms - 1).square().mean().item()
    # d/dw (||g|| - 1)^2 = 2 (||g|| - 1) * g / ||g|| * 2 x, averaged over the batch
    dw = (2 * (norms - 1) / norms).view(-1, 1, 1, 1) * grads * 2 * points
    return value, dw.mean(0)


def r1_closed_form(w: torch.Tensor, reals: torch.Tensor) -> tuple[float, torch.Tensor]:
    """mean_i ||2 w x_i||^2 and its gradient in w: 8 w mean_i x_i^2."""
    return (2 * w * reals).flatten(1).square().sum(1).mean().item(), 8 * w * reals.square().mean(0)


def data(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, *SHAPE, generator=gen), 2.0 + torch.randn(n, *SHAPE, generator=gen)  # reals, fakes


def check_points(kind: str, points: torch.Tensor, reals: torch.Tensor, fakes: torch.Tensor, c: float) -> None:
    if kind == "r1":
        assert torch.equal(points, reals)
    elif kind == "wgan_gp":  # x_hat = real + t (fake - real), one t in (0, 1) per image
        delta = (fakes - reals).flatten(1)
        t = ((points - reals).flatten(1) * delta).sum(1) / delta.square().sum(1)           # [N]
        torch.testing.assert_close(points, reals + t.view(-1, 1, 1, 1) * (fakes - reals))
        assert ((t > 0) & (t < 1)).all()
    else:  # DRAGAN: x_hat in the one-sided box x + [0, c * std(x))
        offset = (points - reals) / (c * reals.std())
        assert (offset >= 0).all() and (offset < 1).all() and offset.max() > 0.1


class ConstantG(nn.Module):
    """Fakes that are all 2.0 (reals from ``data`` are N(0, 1)): far from the reals, so D's gradient differs."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.dummy = shape, nn.Parameter(torch.zeros(()))

    def forward(self, z, **_):
        return torch.full((z.shape[0], *self.shape), 2.0) + self.dummy


def make_ctx(g, d, loss, **extra) -> StepContext:
    plumbing = dict(stage=0, alpha=1.0, latent_dim=4, device=torch.device("cpu"),
                    autocast=lambda: torch.autocast("cpu", enabled=False), backward=lambda value: value.backward())
    return StepContext(generator=g, discriminator=d, loss=loss, **{**plumbing, **extra})
