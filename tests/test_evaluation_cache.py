"""The real-statistics cache key: two views of the same files that hold different images (the plain
view and its x-flip double) must never share cached statistics."""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator

import data_prep
from metric_utils import StandInFeatures
from progan.metrics.evaluation import dataset_key, distributed_real_statistics, real_subset
from train_utils import make_image_folder


def _mean_features(network, dataset, indices) -> np.ndarray:
    """By hand: the stand-in network's features of exactly those images, averaged."""
    return network(torch.stack([dataset[i] for i in indices])).mean(0).numpy()


def test_the_x_flip_view_of_a_folder_gets_its_own_key_and_its_own_cached_statistics(tmp_path):
    folder = make_image_folder(tmp_path / "reals", count=8)  # an off-centre patch each: a mirror differs
    plain = data_prep.open_dataset(str(folder), 16)
    flipped = data_prep.open_dataset(str(folder), 16, xflip=True)
    assert (len(plain), len(flipped)) == (8, 16)
    # same path, same (absent) file list: only the length tells the views apart
    assert dataset_key(str(folder), plain) != dataset_key(str(folder), flipped)

    network, acc, num = StandInFeatures(), Accelerator(cpu=True), 6  # a seeded subset of each view
    cache = tmp_path / "fid-stats"
    stats = {}
    for name, dataset in (("plain", plain), ("flipped", flipped)):  # plain first: its entry is on disk
        stats[name] = distributed_real_statistics(acc, dataset, network, num=num, cache_dir=cache,
                                                  dataset_key=dataset_key(str(folder), dataset))
        by_hand = _mean_features(network, dataset, real_subset(len(dataset), num))
        np.testing.assert_allclose(np.asarray(stats[name].mu), by_hand, rtol=1e-5, atol=1e-6, err_msg=name)
    assert len(list(cache.glob("real-*.safetensors"))) == 2
    assert not np.allclose(np.asarray(stats["plain"].mu), np.asarray(stats["flipped"].mu), atol=1e-4)
