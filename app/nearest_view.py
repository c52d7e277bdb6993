"""The app's "nearest training image" view: one image's nearest real image in Inception features.

The memorization check of ``evaluate.py --nearest`` (``progan.metrics.nearest``), for a single image:
embed it with the metrics' Inception network (about a third of a second on a CPU) and search the
*cached* real features. Embedding the training set takes minutes to hours on a CPU, so a request
never does it: when no cache exists, the view answers with one line naming the command that fills
it. The training images are the built-in OpenMoji set at the model's resolution (what the bundled
weights were trained on), used only if already prepared on this server. The network, the real
features and the real-to-real median (the yardstick of ``progan.metrics.nearest``) are loaded once
per resolution and kept.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["NearestIndex", "NearestMatch", "nearest_index"]


@dataclass(frozen=True)
class NearestMatch:
    real: np.ndarray      # [R, R, 3] uint8, the nearest training image
    index: int            # its index in the training set
    distance: float       # L2 in Inception pool features
    threshold: float      # median real-to-real nearest-neighbour distance
    num_real: int


class NearestIndex:
    """Real features of one training set and the network that made them: ``match(image)``."""

    def __init__(self, network: Any, dataset: Any, features: torch.Tensor) -> None:
        from progan.metrics.nearest import nearest_neighbours

        self.network, self.dataset, self.features = network, dataset, features.double()  # converted once
        # the yardstick, once per server: float32 is 4x faster than float64 and exact enough for a median
        real_distances, _ = nearest_neighbours(features.float(), features.float(), exclude_self=True, dtype=torch.float32)
        self.threshold = float(real_distances.quantile(0.5))

    @torch.no_grad()
    def match(self, image: np.ndarray) -> NearestMatch:
        """``image [R, R, 3]`` uint8 -> its nearest training image."""
        from progan.metrics.nearest import nearest_neighbours

        pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # [1, 3, R, R] uint8
        feature = self.network(pixels).float().cpu()
        distance, index = nearest_neighbours(feature, self.features)
        i = int(index[0])
        real = self.dataset[i]
        real = real[0] if isinstance(real, (tuple, list)) else real
        return NearestMatch(real.permute(1, 2, 0).numpy(), i, float(distance[0]), self.threshold, len(self.features))


_INDEXES: dict[int, NearestIndex] = {}
_LOCK = threading.Lock()


def nearest_index(resolution: int) -> NearestIndex:
    """The index for the built-in OpenMoji set at ``resolution``; raises ValueError (one line) when the
    network, the prepared images or their cached features are missing."""
    with _LOCK:
        if resolution not in _INDEXES:
            _INDEXES[resolution] = _load(resolution)
        return _INDEXES[resolution]


def _load(resolution: int) -> NearestIndex:
    from data_prep.builtin import default_cache_root
    from data_prep.dataset import open_dataset
    from progan.hub import cache_root
    from progan.metrics.evaluation import dataset_key
    from progan.metrics.features import real_cache
    from progan.metrics.inception import FeatureNetworkError, load_feature_network

    command = f"python evaluate.py --nearest --weights <a {resolution} px model> --num 100"
    folder = default_cache_root() / f"openmoji-{resolution}"
    if not (folder / "manifest.json").is_file():
        raise ValueError(f"the training images ({resolution} px OpenMoji) are not prepared on this server; "
                         f"run once: {command}")
    try:
        network = load_feature_network(None)
    except FeatureNetworkError as exc:
        raise ValueError(f"the nearest-image view needs the Inception network: {str(exc).splitlines()[0]}") from None
    dataset = open_dataset(folder, resolution)
    cache = real_cache(dataset, network, dataset_key=dataset_key("", dataset), num=len(dataset),
                       cache_dir=cache_root() / "fid-stats")
    stats = cache.load()
    if stats is None:
        raise ValueError(f"no cached Inception features of the {len(dataset)} training images at {resolution} px "
                         f"(embedding them takes minutes to an hour on a CPU); run once: {command}")
    return NearestIndex(network, dataset, stats.features)
