"""The metric floor holds out a random subset, so a dataset stored in content order still floors near 0."""
from __future__ import annotations

import pytest
import torch

from metric_utils import StandInFeatures
from progan.metrics.features import compute_features, compute_metrics
from progan.metrics.floor import held_out_split, real_floor


def _sorted_by_colour(num: int = 240) -> torch.Tensor:
    """uint8 [num, 3, 8, 8]: the first half red-ish, the second half blue-ish (stored in content order)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 96, (num, 3, 8, 8), generator=g)
    images[: num // 2, 0] += 150  # red
    images[num // 2:, 2] += 150   # blue
    return images.to(torch.uint8)


def test_the_split_is_a_seeded_random_partition():
    reference, held_out = held_out_split(100, 30, seed=3)
    assert len(held_out) == 30 and len(reference) == 70
    assert sorted(torch.cat([reference, held_out]).tolist()) == list(range(100))
    again, other = held_out_split(100, 30, seed=3)[1], held_out_split(100, 30, seed=4)[1]
    assert torch.equal(held_out, again) and not torch.equal(held_out, other)
    assert held_out.tolist() != list(range(70, 100))  # not the tail
    with pytest.raises(ValueError, match="at least 2 images on each side"):
        held_out_split(10, 9, seed=0)


def test_a_dataset_in_content_order_floors_near_zero_kid_where_the_last_n_split_does_not():
    features = compute_features(iter(_sorted_by_colour().split(32)), StandInFeatures())  # [240, 16]
    held = 60
    # the old split: the last 60 images (all blue) against the first 180 (120 red, 60 blue)
    tail = compute_metrics(features[:-held], features[-held:], kid_subset_size=held)
    assert tail["kid"] > 0.05 and tail["recall"] < 0.5  # the difference in content, not the sample size
    for seed in (0, 1):
        floor = real_floor(features, num_held_out=held, seed=seed)
        # KID is unbiased: same distribution -> 0 up to sampling noise, far below the tail split's value
        assert abs(floor["kid"]) < 0.03 * tail["kid"], (seed, floor["kid"], tail)
        assert floor["fid"] < 0.03 * tail["fid"], (seed, floor["fid"], tail)
        assert floor["precision"] > 0.8 and floor["recall"] > 0.8
