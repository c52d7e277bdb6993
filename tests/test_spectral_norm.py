"""Spectral normalization's defaults (issue 20, default sweep): Miyato et al. 2018 run *one* power
iteration per update (section 2.1, appendix A algorithm 1), and so must ``SpectralNorm(weight)`` and
``apply_spectral_norm(module)`` when not told otherwise (the trainer's ``--spectral-norm`` calls the latter
with no count). Each check redoes algorithm 1's step by hand from the vectors the module held before the
call: ``v <- W^T u / ||W^T u||``, ``u <- W v / ||W v||``, ``sigma = u^T W v``; and checks that a second
step would have moved them, so a module that ran two would be caught.
"""
from __future__ import annotations

import torch
from torch import nn

from progan.layers import EqualizedConv2d, EqualizedLinear
from progan.spectral_norm import SpectralNorm, apply_spectral_norm


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm()


def _one_step(matrix: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1, one iteration, written out: ``(u', v')``."""
    v = _unit(matrix.t() @ u)
    return _unit(matrix @ v), v


def _check_one_iteration(norm: nn.Module, weight: torch.Tensor) -> None:
    matrix = weight.detach().flatten(1)
    u0 = norm.u.clone()
    u1, v1 = _one_step(matrix, u0)
    u2, _ = _one_step(matrix, u1)
    assert (u2 - u1).abs().max() > 1e-4  # not converged: one step more moves u 100x the tolerance
    out = norm.train()(weight)
    torch.testing.assert_close(norm.u, u1, rtol=0, atol=1e-6)
    torch.testing.assert_close(norm.v, v1, rtol=0, atol=1e-6)
    torch.testing.assert_close(out, weight / torch.dot(u1, matrix @ v1), rtol=1e-6, atol=1e-7)


def test_spectral_norm_runs_one_power_iteration_per_forward_by_default():
    torch.manual_seed(3)
    weight = torch.randn(6, 4, 3, 3)  # a conv kernel: W is [6, 36]
    _check_one_iteration(SpectralNorm(weight), weight)


def test_apply_spectral_norm_runs_one_power_iteration_per_forward_by_default():
    torch.manual_seed(4)
    module = nn.Sequential(EqualizedConv2d(3, 5, 3), nn.Flatten(), EqualizedLinear(5 * 4 * 4, 7))
    apply_spectral_norm(module)
    for layer in (module[0], module[2]):
        _check_one_iteration(layer.spectral_norm, (layer.weight * layer.weight_scale).detach())
