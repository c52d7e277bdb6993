"""The real-statistics cache key: two views of the same files that hold different images (the plain
view and its x-flip double), or a dataset directory prepared again in place from other images, must never
share cached statistics."""

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


def test_a_dataset_prepared_again_in_place_with_other_images_gets_fresh_statistics(tmp_path):
    """data_prep's manifest lists every array with its checksum (progan/metrics/evaluation.py, dataset_key):
    re-preparing the same directory from the same images keeps the key (the cache is reused), from as many
    other images (the colour negatives) changes it, so the cached statistics are the new images' own (by
    hand from the stand-in network), not the stale ones of the images that were there before."""
    from PIL import Image

    first = make_image_folder(tmp_path / "first", count=8)
    second = tmp_path / "second"
    second.mkdir()
    for png in sorted(first.glob("*.png")):
        Image.fromarray(255 - np.asarray(Image.open(png))).save(second / png.name)
    data = tmp_path / "data"
    network, acc, num, cache = StandInFeatures(), Accelerator(cpu=True), 6, tmp_path / "fid-stats"

    def prepare_and_measure(source):
        data_prep.prepare(source, data, resolution=16, workers=1, progress=False, overwrite=True)
        dataset = data_prep.open_dataset(str(data), 16)
        key = dataset_key(str(data), dataset)
        stats = distributed_real_statistics(acc, dataset, network, num=num, cache_dir=cache, dataset_key=key)
        return key, np.asarray(stats.mu), _mean_features(network, dataset, real_subset(len(dataset), num))

    key, mu, by_hand = prepare_and_measure(first)
    np.testing.assert_allclose(mu, by_hand, rtol=1e-5, atol=1e-6)
    assert prepare_and_measure(first)[0] == key                        # same images again: same key
    new_key, new_mu, new_by_hand = prepare_and_measure(second)         # same path, same count, other images
    assert new_key != key
    np.testing.assert_allclose(new_mu, new_by_hand, rtol=1e-5, atol=1e-6)
    assert not np.allclose(new_mu, by_hand, atol=1e-4)                 # the check can tell stale from fresh
    assert len(list(cache.glob("real-*.safetensors"))) == 2
