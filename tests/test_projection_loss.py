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

