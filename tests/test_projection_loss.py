"""The projector's ``lap+inception`` distance (``app.projection.loss``) with a stand-in feature network.

Inception's weights are not available offline, so ``load_feature_network`` is replaced by a network whose
features are the first pixels: the distance must be ``mean((x - y)^2) + Lap1(x, y) + 1e-3 * mean((f(x) -
f(y))^2)`` (the weight documented in docs/projection.md), with both images mapped from [-1, 1] to the
network's [0, 255], and the fixed target embedded once per run, not once per step.
"""
from __future__ import annotations

import torch

from app.projection.loss import lap1_distance, make_distance


class FirstPixels:
    """Features = the first 5 values of each image; records every batch it embeds."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images.detach().clone())
        return images.flatten(1)[:, :5]


def test_lap_inception_adds_a_thousandth_of_the_feature_mse_and_embeds_the_target_once(monkeypatch):
    network = FirstPixels()
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: network)
    distance = make_distance("lap+inception")
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    for step in range(3):
        x = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
        fx, fy = (x.flatten(1)[:, :5] + 1) * 127.5, (y.flatten(1)[:, :5] + 1) * 127.5
        expected = (x - y).square().mean() + lap1_distance(x, y) + 1e-3 * (fx - fy).square().mean()
        torch.testing.assert_close(distance(x, y), expected)
        assert len(network.seen) == step + 2                  # the target once, then one batch per step
    torch.testing.assert_close(network.seen[0], (y + 1) * 127.5)


def test_lap1_weighs_level_j_by_four_to_the_minus_j():
    """Bojanowski et al. 2018, section 3.3: ``Lap1 = sum_j 2**(-2j) |L^j(x) - L^j(y)|``. The pyramid is linear,
    so only the difference matters, and two differences have closed forms: a constant ``c`` passes every
    band-pass level as 0 (the replicate-padded blur keeps a constant) and lands whole in the residual, level
    ``J = log2(side / 4)``, so Lap1 is ``|c| / 4**J``; a +-1 checkerboard is killed by the 5-tap blur
    ((1 - 4 + 6 - 4 + 1) / 16 = 0 along each axis) and lands in level 0, so Lap1 is 1 at every size (within
    1%: the replicate padding lets a little through at the border)."""
    torch.manual_seed(0)
    for side, levels in ((8, 1), (16, 2), (32, 3)):
        y = torch.rand(2, 3, side, side) * 2 - 1
        c = 0.3
        torch.testing.assert_close(lap1_distance(y + c, y), torch.tensor(c / 4 ** levels), rtol=1e-4, atol=1e-6)
        n = torch.arange(side)
        checker = ((-1.0) ** (n[:, None] + n[None, :])).expand(2, 3, side, side)
        torch.testing.assert_close(lap1_distance(y + checker, y), torch.tensor(1.0), rtol=0, atol=0.01)
        # and the lap distance is pixel MSE plus Lap1
        torch.testing.assert_close(make_distance("lap")(y + c, y), torch.tensor(c * c + c / 4 ** levels), rtol=1e-4, atol=1e-6)
