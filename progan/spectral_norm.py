"""Spectral normalization of the discriminator (Miyato et al., ICLR 2018), on equalized layers.

Section 2.1: each layer's weight ``W`` is replaced by ``W / sigma(W)``, ``sigma`` its largest singular
value, so every layer is 1-Lipschitz and so is D (up to its activations, which are 1-Lipschitz too).
``sigma`` comes from one power iteration per forward pass (section 2.1 / appendix A, algorithm 1) on
the kernel reshaped to ``[out, in * kh * kw]``, as the paper does (appendix A: the reshaped matrix is a
bound of the convolution's operator norm up to a constant, not the operator norm itself); the
iteration's vectors ``u``, ``v`` persist between calls, so one iteration per step suffices.

With equalized learning rate (ProGAN section 4.1) the layer computes with ``W_eff = c * W``, ``c`` the
He constant, and spectral normalization is applied to that effective weight: ``W_eff / sigma(W_eff)``.
The constant cancels there (``c W / (c sigma(W)) = W / sigma(W)``), so it no longer sets the output
scale, which is what it was for at initialisation; what it still does is what equalized learning rate
is about: the *stored* ``W`` stays at N(0, 1) scale in every layer, so Adam's steps (of size about lr,
whatever the gradient's scale) change every layer's normalized weight by the same relative amount.
``u``, ``v`` are buffers (``...conv1.spectral_norm.u``): a checkpoint carries them and a resumed run
computes the same ``sigma`` bit for bit. They are updated in training mode only, under ``no_grad``
(the gradient flows through ``u^T W v`` with ``u``, ``v`` held constant, as in the paper), in float32
whatever the autocast dtype, and are drawn at construction from a generator of their own, so turning
the option on leaves the global RNG stream (latents, noise) of a run unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import EqualizedConv2d, EqualizedLinear

__all__ = ["SpectralNorm", "apply_spectral_norm"]


class SpectralNorm(nn.Module):
    """``weight -> weight / sigma(weight)``; any weight shape ``[out, ...]`` (reshaped to ``[out, rest]``)."""

    def __init__(self, weight: torch.Tensor, *, power_iterations: int = 1, eps: float = 1e-12,
                 seed: int = 0) -> None:
        super().__init__()
        self.power_iterations, self.eps = power_iterations, eps
        rows, cols = weight.shape[0], weight[0].numel()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("u", F.normalize(torch.randn(rows, generator=generator), dim=0, eps=eps).to(weight.device))
        self.register_buffer("v", F.normalize(torch.randn(cols, generator=generator), dim=0, eps=eps).to(weight.device))

    @torch.no_grad()
    def power_iteration(self, matrix: torch.Tensor, iterations: int) -> None:
        """``v <- W^T u / ||.||``, ``u <- W v / ||.||``, in place (algorithm 1 of the paper)."""
        for _ in range(iterations):
            self.v.copy_(F.normalize(matrix.t() @ self.u, dim=0, eps=self.eps))
            self.u.copy_(F.normalize(matrix @ self.v, dim=0, eps=self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            matrix = weight.float().flatten(1)                          # [out, in * kh * kw]
            if self.training:
                self.power_iteration(matrix.detach(), self.power_iterations)
            # clones: the buffers change in place at the next call, and this graph may be backpropagated
            # (twice, under a gradient penalty) after that
            sigma = torch.dot(self.u.clone(), matrix @ self.v.clone())
        return weight / sigma.to(weight.dtype)

    def extra_repr(self) -> str:
        return f"u={tuple(self.u.shape)}, v={tuple(self.v.shape)}, power_iterations={self.power_iterations}"


def apply_spectral_norm(module: nn.Module, *, power_iterations: int = 1) -> nn.Module:
    """Spectral-normalize every equalized layer in ``module`` (in place); returns ``module``. Each layer's
    ``u``, ``v`` start from a seed of their own (its index) and are refined by 15 iterations up front, as
    torch.nn.utils.spectral_norm does, so the first sigma is already accurate."""
    layers = [m for m in module.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
    for index, layer in enumerate(layers):
        weight = layer.weight.detach() * layer.weight_scale
        norm = SpectralNorm(weight, power_iterations=power_iterations, seed=index)
        norm.power_iteration(weight.float().flatten(1), 15)
        layer.spectral_norm = norm
    return module
