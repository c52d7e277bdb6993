"""The bounds of the distributed evaluation (``progan/metrics/evaluation.py``), each at its exact value.

Two images per side are the fewest a covariance (and so FID) is defined for: exactly 2 generated and 2
real are scored, 1 is refused. One image per process is the fewest a shard can hold: as many images as
processes is accepted, one fewer refused. The main process's "the cache hit" flag reaches the others as
it was, false included. Expected values are worked out by hand (FID of two rank-1 covariances)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch import nn

import progan.metrics.evaluation as evaluation
from progan.metrics.evaluation import _agree, _shard, evaluate_generator


class ChannelMeans(nn.Module):
    """Feature network: uint8 [N, 3, H, W] -> the per-channel means [N, 3] (float)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3))


class TwoFlatImages(nn.Module):
    """A "generator" whose batch of B samples is flat images from -1 (black) to 1 (white), whatever z is."""

    config = SimpleNamespace(latent_dim=4, image_channels=3, num_classes=0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.linspace(-1, 1, z.shape[0]).view(-1, 1, 1, 1).expand(-1, 3, 4, 4)


def _flat(r: int, g: int, b: int) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.uint8).view(3, 1, 1).expand(3, 4, 4).clone()


def test_two_generated_and_two_real_images_are_scored_and_one_is_refused():
    """FID of 2 against 2 by hand: with u = a - b and v = c - d, each covariance is u u^T / 2 (N - 1 = 1), the
    product of two rank-1 matrices has the one eigenvalue (u.v)^2 / 4, so
    FID = |mean(a, b) - mean(c, d)|^2 + |u|^2 / 2 + |v|^2 / 2 - |u.v|."""
    reals = [_flat(10, 20, 30), _flat(50, 20, 90)]
    a, b = np.array([10., 20., 30.]), np.array([50., 20., 90.])
    c, d = np.zeros(3), np.full(3, 255.)  # the generator's black and white images
    u, v = a - b, c - d
    expected = (np.sum(((a + b) / 2 - (c + d) / 2) ** 2) + u @ u / 2 + v @ v / 2 - abs(u @ v))
    common = dict(accelerator=Accelerator(cpu=True), dataset_key="k", cache_dir=None, batch_size=2, metrics=("fid",))
    got = evaluate_generator(TwoFlatImages(), reals, ChannelMeans(), num=2, **common)
    assert got["fid"] == pytest.approx(expected, rel=1e-6)
    assert evaluate_generator(TwoFlatImages(), reals, ChannelMeans(), num=2, num_real=2,
                              **common)["fid"] == pytest.approx(expected, rel=1e-6)
    for data, num, num_real in ((reals, 1, None), (reals[:1], 2, None), (reals, 2, 1)):
        with pytest.raises(ValueError, match="^need at least 2 generated and 2 real images"):
            evaluate_generator(TwoFlatImages(), data, ChannelMeans(), num=num, num_real=num_real, **common)


def test_a_shard_needs_one_image_per_process_and_as_many_as_processes_is_enough():
    for rank in (0, 1, 2):
        acc = SimpleNamespace(num_processes=3, process_index=rank)
        assert list(_shard(acc, 3)) == [rank]       # one each
        assert list(_shard(acc, 7)) == [i for i in range(7) if i % 3 == rank]
        with pytest.raises(ValueError, match=r"^need at least one image per process: 2 images for 3$"):
            _shard(acc, 2)


def test_the_main_processs_cache_flag_reaches_every_process_as_it_was(monkeypatch):
    """With 2 processes the flag goes through ``broadcast`` (here: the main process's own tensor back)."""
    sent = []
    monkeypatch.setattr(evaluation, "broadcast", lambda tensor, from_process: sent.append(float(tensor[0])) or tensor)
    acc = SimpleNamespace(num_processes=2, device=torch.device("cpu"))
    assert _agree(acc, True) is True and _agree(acc, False) is False
    assert sent == [1.0, 0.0]
