"""Features of real and generated images, the on-disk cache of real ones, and the metric bundle.

Papers: the features are Inception pool_3 activations as in Heusel et al. 2017 (FID), section 3;
the metrics themselves live in `progan.metrics.scores` (FID, KID of Binkowski et al. 2018, improved
precision/recall of Kynkaanniemi et al. 2019, section 2). Sampling mirrors NVIDIA's stylegan2-ada
metrics: real images are the first `num` of the dataset; generated images are converted to uint8
exactly like saving a PNG before they reach the feature network.

Public API (a "network" is any callable mapping uint8 images [N, 3, H, W] to features [N, D];
`progan.metrics.inception.load_feature_network()` returns the real one, tests use a tiny stand-in):

    compute_features(images, network, *, batch_size=64, device=None, num=None,
                     num_workers=0, progress=False, desc="features", after_batch=None)
        -> Tensor [N, D] float32 (CPU); after_batch() runs after every batch (it may raise to give way)
    real_statistics(dataset, network, *, dataset_key, num=None, cache_dir=None,
                    batch_size=64, device=None, num_workers=0, progress=False) -> RealStatistics
    generated_features(generator, network, *, num, batch_size=64, seed=0, device=None,
                       generator_kwargs=None, indices=None, progress=False, desc="generated",
                       after_batch=None) -> Tensor [n, D]
    real_cache(dataset, network, *, dataset_key, num, cache_dir) -> RealCache  # .load() / .save()
    statistics_of(features) -> RealStatistics
    images_to_uint8(images) -> uint8 Tensor          # [-1, 1] floats -> PNG-equivalent bytes
    latents_for_indices(indices, latent_dim, *, seed) -> Tensor [n, latent_dim]
    compute_metrics(real_features, fake_features, *, metrics=("fid", "kid", "pr"),
                    real_stats=None, seed=0, kid_subsets=100, kid_subset_size=1000, pr_k=3,
                    device=None)
        -> dict with keys among "fid", "kid", "precision", "recall"

Multi-process evaluation: pass each rank a disjoint `indices` (e.g. range(rank, num, world)) to
`generated_features`; sample i always uses the same latent, so the gathered set does not depend
on the number of processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from . import scores as M
from ..images import images_to_uint8

FeatureNetwork = Callable[[torch.Tensor], torch.Tensor]
CACHE_FORMAT_VERSION = "1"


def _module_device(module: object) -> torch.device:
    if isinstance(module, torch.nn.Module):
        for tensor in module.parameters():
            return tensor.device
        for tensor in module.buffers():
            return tensor.device
    return torch.device("cpu")


def _first_tensor(batch: object) -> torch.Tensor:
    # Datasets may yield bare images or (image, label, ...) tuples like TensorDataset does.
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"expected image tensors, got {type(batch).__name__}")
    return batch


@torch.no_grad()
def compute_features(
    images: Dataset | Iterable[torch.Tensor],
    network: FeatureNetwork,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    num: int | None = None,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "features",
    after_batch: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Features [N, D] (float32, CPU) of uint8 images.

    `images` is either a map-style Dataset of single images [3, H, W] (the first `num` are used)
    or an iterable of batches [B, 3, H, W] (consumed whole; `num` then truncates). `after_batch()`
    runs after every batch; an exception it raises ends the computation (the trainer's stop request
    during an evaluation does so, and nothing computed so far is kept).
    """
    device = torch.device(device) if device is not None else _module_device(network)
    if hasattr(images, "__getitem__") and hasattr(images, "__len__"):
        count = len(images) if num is None else min(num, len(images))
        if count < len(images):
            images = Subset(images, range(count))
        batches: Iterable = DataLoader(
            images, batch_size=batch_size, shuffle=False, num_workers=num_workers
        )
        total = count
    else:
        batches, total = images, num
    features, seen = [], 0
    with tqdm(total=total, disable=not progress, unit="img", desc=desc, leave=False) as bar:
        for batch in batches:
            batch = _first_tensor(batch)
            if num is not None:
                batch = batch[: num - seen]
            if batch.shape[0] == 0:
                break
            features.append(network(batch.to(device)).float().cpu())  # [B, D]
            seen += batch.shape[0]
            bar.update(batch.shape[0])
            if after_batch is not None:
                after_batch()
            if num is not None and seen >= num:
                break
    if not features:
        raise ValueError("no images to compute features of")
    return torch.cat(features)


@dataclass(frozen=True)
class RealStatistics:
    """Real-image features [N, D] (for KID, P/R) and their float64 mean [D] / covariance [D, D]."""

    features: torch.Tensor
    mu: np.ndarray
    sigma: np.ndarray


def _cache_key(fields: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _load_cache(path: Path, fields: dict[str, str]) -> RealStatistics | None:
    try:
        with safe_open(str(path), framework="pt") as handle:
            if handle.metadata() != fields:  # a truncated-hash collision or an older format
                return None
            return RealStatistics(
                features=handle.get_tensor("features"),
                mu=handle.get_tensor("mu").numpy(),
                sigma=handle.get_tensor("sigma").numpy(),
            )
    except (OSError, SafetensorError):  # missing or corrupt: recompute
        return None


def _save_cache(path: Path, stats: RealStatistics, fields: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "features": stats.features.contiguous(),
        "mu": torch.from_numpy(np.ascontiguousarray(stats.mu)),
        "sigma": torch.from_numpy(np.ascontiguousarray(stats.sigma)),
    }
    # Write then rename, so a crash or a concurrent rank never leaves a half-written cache file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=fields)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass(frozen=True)
class RealCache:
    """Where the statistics of one (dataset, resolution, count, network) live; `path` None = no cache."""

    path: Path | None
    fields: dict[str, str]

    def load(self) -> RealStatistics | None:
        return None if self.path is None else _load_cache(self.path, self.fields)

    def save(self, stats: RealStatistics) -> None:
        if self.path is not None:
            _save_cache(self.path, stats, self.fields)


def real_cache(
    dataset: Dataset,
    network: FeatureNetwork,
    *,
    dataset_key: str,
    num: int,
    cache_dir: str | Path | None,
) -> RealCache:
    """The cache entry keyed by (dataset_key, resolution, num, network sha256); no file is touched."""
    if cache_dir is None:
        return RealCache(None, {})
    network_sha = getattr(network, "sha256", None)
    if not network_sha:
        raise ValueError("caching real statistics needs a network with a `sha256` attribute")
    resolution = tuple(_first_tensor(dataset[0]).shape[-2:])
    fields = {
        "format": CACHE_FORMAT_VERSION,
        "dataset_key": str(dataset_key),
        "resolution": "x".join(map(str, resolution)),
        "num_images": str(num),
        "network_sha256": str(network_sha),
    }
    return RealCache(Path(cache_dir) / f"real-{_cache_key(fields)[:24]}.safetensors", fields)


def statistics_of(features: torch.Tensor) -> RealStatistics:
    mu, sigma = M.feature_statistics(features)
    return RealStatistics(features=features, mu=mu, sigma=sigma)


def real_statistics(
    dataset: Dataset,
    network: FeatureNetwork,
    *,
    dataset_key: str,
    num: int | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> RealStatistics:
    """Features and statistics of the first `num` images (all if None) of a uint8 dataset.

    With `cache_dir`, results are stored as safetensors (no pickle) keyed by (dataset_key -- the
    caller's dataset checksum --, resolution, image count, network sha256), and read back on the
    next call instead of running the network. The network must then have a `sha256` attribute.
    """
    count = len(dataset) if num is None else min(num, len(dataset))
    if count < 2:
        raise ValueError(f"need at least 2 real images, got {count}")
    cache = real_cache(dataset, network, dataset_key=dataset_key, num=count, cache_dir=cache_dir)
    cached = cache.load()
    if cached is not None:
        return cached
    features = compute_features(
        dataset,
        network,
        batch_size=batch_size,
        device=device,
        num=count,
        num_workers=num_workers,
        progress=progress,
    )
    stats = statistics_of(features)
    cache.save(stats)
    return stats


def latents_for_indices(
    indices: Sequence[int], latent_dim: int, *, seed: int
) -> torch.Tensor:
    """z [n, latent_dim] float32; row i depends only on (seed, indices[i]), not on batching."""
    # torch's CPU generator (mt19937) keeps only the low 32 bits of a seed, so (seed, index) is
    # mixed into 32 bits: index times an odd constant is a bijection mod 2**32 (no two samples of
    # a run share a latent), xor-ed with a hash of `seed` so that each seed gives another set.
    run = int.from_bytes(hashlib.blake2b(str(int(seed)).encode(), digest_size=4).digest(), "little")
    rng = torch.Generator(device="cpu")
    rows = []
    for index in indices:
        # One CPU generator seed per sample: the same latent on any device or number of processes.
        rng.manual_seed(((int(index) * 0x9E3779B1) & 0xFFFFFFFF) ^ run)
        rows.append(torch.randn(latent_dim, generator=rng, dtype=torch.float32))
    return torch.stack(rows)


@torch.no_grad()
def generated_features(
    generator: torch.nn.Module,
    network: FeatureNetwork,
    *,
    num: int,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
    generator_kwargs: Mapping[str, Any] | None = None,
    indices: Sequence[int] | None = None,
    progress: bool = False,
    desc: str = "generated",
    after_batch: Callable[[], None] | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Features [len(indices), D] (float32, CPU) of generated samples `indices` (default 0..num-1).

    `labels` (int64 [num], conditional generators): sample i is generated with class `labels[i]`.

    `generator(z, **generator_kwargs)` maps z [B, generator.config.latent_dim] to images
    [B, 3, R, R] in [-1, 1] (kwargs such as `psi=0.7` or `stage=2, alpha=0.5`). Put the generator
    in eval mode first; this function does not change it.
    """
    indices = range(num) if indices is None else indices
    if any(not 0 <= i < num for i in indices):
        raise ValueError(f"indices must lie in [0, {num})")
    latent_dim = generator.config.latent_dim
    device = torch.device(device) if device is not None else _module_device(generator)
    kwargs = dict(generator_kwargs or {})

    def batches() -> Iterable[torch.Tensor]:
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            z = latents_for_indices(chunk, latent_dim, seed=seed)
            if labels is not None:
                kwargs["labels"] = labels[torch.as_tensor(list(chunk), dtype=torch.long)].to(device)
            images = generator(z.to(device), **kwargs)  # [B, 3, R, R] in [-1, 1]
            yield images_to_uint8(images)

    return compute_features(batches(), network, num=len(indices), progress=progress, desc=desc,
                            after_batch=after_batch)


def compute_metrics(
    real_features: np.ndarray | torch.Tensor,
    fake_features: np.ndarray | torch.Tensor,
    *,
    metrics: Sequence[str] = ("fid", "kid", "pr"),
    real_stats: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """The requested metrics as {"fid", "kid", "precision", "recall"} (subset by `metrics`).

    `real_stats` = (mu, sigma) skips recomputing the real covariance (e.g. from the cache).
    `device` runs the precision/recall distance batches there (50k x 50k wants a GPU).
    """
    unknown = set(metrics) - {"fid", "kid", "pr"}
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from fid, kid, pr")
    results: dict[str, float] = {}
    if "fid" in metrics:
        mu_real, sigma_real = real_stats or M.feature_statistics(real_features)
        mu_fake, sigma_fake = M.feature_statistics(fake_features)
        results["fid"] = M.frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake)
    if "kid" in metrics:
        results["kid"] = M.kernel_inception_distance(
            real_features,
            fake_features,
            num_subsets=kid_subsets,
            max_subset_size=kid_subset_size,
            seed=seed,
        )
    if "pr" in metrics:
        results["precision"], results["recall"] = M.precision_recall(
            real_features, fake_features, k=pr_k, device=device
        )
    return results
