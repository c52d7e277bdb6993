"""A tiny stand-in for the Inception feature network, for fast metric tests."""
from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from progan.metrics.inception import FeatureNetworkError, find_feature_network_file


class StandInFeatures(nn.Module):
    """Fixed random conv + global average pool: uint8 [N, 3, H, W] -> [N, 16]; counts its calls."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 16, 3)
        self.sha256 = hashlib.sha256(f"stand-in-{seed}".encode()).hexdigest()
        self.calls = 0

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = images.float() / 127.5 - 1  # [N, 3, H, W]
        return torch.relu(self.conv(x)).mean(dim=(2, 3))  # [N, 16]



class CountingFeatures(StandInFeatures):
    """The stand-in that also records how many images each call embeds (``rows``): which images a run
    extracted features of, e.g. whether the real ones came from a cache."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.rows: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.rows.append(images.shape[0])
        return super().forward(images)


def _has_inception() -> bool:
    try:
        find_feature_network_file()
    except FeatureNetworkError:
        return False
    return True


needs_inception = pytest.mark.skipif(not _has_inception(),
                                     reason="Inception network not installed (pip install -e '.[metrics]')")

