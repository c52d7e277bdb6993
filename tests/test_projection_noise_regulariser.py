"""The projector's noise-map regulariser enters the objective as ``+ noise_weight * penalty``."""
from __future__ import annotations

import pytest
import torch

from app.projection import ProjectionOptions, project
from families import FAMILIES


def _hand_penalty(maps: list[torch.Tensor]) -> torch.Tensor:
    """Squared 1-px autocorrelations in x and y, at each scale from the map's down to 8 px (2x2 means)."""
    total = torch.zeros(())
    for n in maps:
        while True:
            right = torch.cat([n[..., -1:], n[..., :-1]], dim=3)
            down = torch.cat([n[..., -1:, :], n[..., :-1, :]], dim=2)
            total = total + (n * right).mean() ** 2 + (n * down).mean() ** 2
            if n.shape[-1] <= 8:
                break
            b, c, h, w = n.shape
            n = n.reshape(b, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))
    return total


def _first_step(monkeypatch, noise_weight):
    """The noise maps and their gradients when Adam takes its first step."""
    seen = {}

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            if not seen:
                maps = self.param_groups[0]["params"][1:]
                seen["maps"] = [p.detach().clone() for p in maps]
                seen["grads"] = [p.grad.detach().clone() for p in maps]
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    target = torch.linspace(-1, 1, 3 * 16 * 16).reshape(3, 16, 16)
    project(g, target, ProjectionOptions(steps=1, space="w+", w_avg_samples=50, noise_weight=noise_weight))
    return seen["maps"], seen["grads"]


@pytest.mark.parametrize("weight", [1e5, 3.0])
def test_the_noise_gradient_is_the_distances_plus_the_weight_times_the_penaltys(monkeypatch, weight):
    """NVIDIA's objective is distance + noise_weight * penalty. At the first step the maps are the same
    whatever the weight (same seed), so the noise gradient at weight w minus that at weight 0 is
    w * d(penalty)/d(maps), the penalty written here by hand. At two weights, so a weight divided rather
    than multiplied shows; a penalty subtracted flips the sign."""
    maps0, grads0 = _first_step(monkeypatch, 0.0)
    maps, grads = _first_step(monkeypatch, weight)
    assert len(maps) >= 2
    for a, b in zip(maps0, maps):
        assert torch.equal(a, b)
    leaves = [m.clone().requires_grad_(True) for m in maps]
    expected = torch.autograd.grad(_hand_penalty(leaves), leaves)
    for g_w, g_0, e in zip(grads, grads0, expected):
        assert e.abs().max() > 0
        torch.testing.assert_close(g_w - g_0, weight * e, rtol=1e-3, atol=1e-6 * weight * e.abs().max().item())
