"""Metrics of a generator on one or many processes, and the periodic evaluation used during training.

Papers: FID (Heusel et al. 2017, section 3), KID (Binkowski et al. 2018, section 3) and improved
precision/recall (Kynkaanniemi et al. 2019, section 2); the formulas are in `progan.metrics.scores`, the
features in `progan.metrics.features`. As in NVIDIA's stylegan2-ada metrics, the real images are the
first `num` of the dataset and generated sample i always uses latent i, so a result does not depend
on the number of processes (StyleGAN's per-pixel noise aside, which is drawn per process).

Work is split by index: process r embeds samples r, r + world, r + 2 * world, ...; the features are
gathered and put back into sample order; only the main process computes the metrics. Real-image
statistics are cached (safetensors) by the main process, which tells the others whether the cache
hit, so a second evaluation of the same data costs only the generated samples.

Giving way to a stop: with `should_stop` (the trainer's stop flag), the processes agree after every
feature batch whether any of them was asked to stop (one tiny all-reduce per batch; every process
runs the same number of rounds, padding when its share is a batch shorter) and then all raise
`EvaluationStopped` together: the trainer saves its checkpoint within one batch instead of after
the whole evaluation, and nothing of the evaluation is kept (no partial real-feature cache).

Public API:
    dataset_key(label, dataset) -> str               # cache key: path + manifest file list + length
    gather_in_order(accelerator, local, num) -> Tensor [num, D] (every process)
    distributed_real_statistics(accelerator, dataset, network, *, num, dataset_key, cache_dir=None,
                                batch_size=64, progress=False) -> RealStatistics | None (main only)
    evaluate_generator(generator, dataset, network, *, accelerator, num, dataset_key, ...)
        -> {"fid", "kid", "precision", "recall"} on the main process, None on the others
    PeriodicEvaluator: the trainer's evaluation every N kimg, loading the network once.
    EvaluationStopped: raised on every process when `should_stop` was true on any of them.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from torch.utils.data import Dataset, Subset

from .channels import rgb_view
from .features import (
    FeatureNetwork,
    RealStatistics,
    compute_features,
    compute_metrics,
    generated_features,
    real_cache,
    statistics_of,
)

__all__ = ["dataset_key", "gather_in_order", "distributed_real_statistics", "evaluate_generator",
           "PeriodicEvaluator", "EvaluationStopped", "labels_like_dataset"]


class EvaluationStopped(Exception):
    """A stop was requested during an evaluation; every process gave way at the same batch."""


class _StopPoll:
    """Called after each feature batch: agrees across processes whether any asked to stop, and raises
    `EvaluationStopped` on all of them if so. `finish_phase` pads this process's calls to the rounds
    of the phase, so the collective calls line up even when the shares differ by one batch."""

    def __init__(self, accelerator: Accelerator, should_stop: Callable[[], bool]) -> None:
        self.accelerator, self.should_stop = accelerator, should_stop
        self.calls = 0  # rounds polled so far, over all phases

    def __call__(self) -> None:
        self.calls += 1
        stop = bool(self.should_stop())
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(stop)], device=self.accelerator.device)
            stop = bool(self.accelerator.reduce(flag, reduction="sum")[0] > 0)
        if stop:
            raise EvaluationStopped("stop requested during the evaluation")

    def finish_phase(self, start: int, rounds: int) -> None:
        while self.calls < start + rounds:
            self()


def _rounds(accelerator: Accelerator, num: int, batch_size: int) -> int:
    """Feature batches of the largest per-process share of `num` images."""
    return math.ceil(math.ceil(num / accelerator.num_processes) / batch_size)


def _polled(poll: _StopPoll | None, accelerator: Accelerator, num: int, batch_size: int, compute):
    """`compute(after_batch)` with the stop poll after every batch, padded to the same rounds everywhere."""
    if poll is None:
        return compute(None)
    start = poll.calls
    result = compute(poll)
    poll.finish_phase(start, _rounds(accelerator, num, batch_size))
    return result




def labels_like_dataset(dataset: Dataset, num: int, *, seed: int = 0) -> torch.Tensor | None:
    """int64 [num] class labels drawn (seeded) from `dataset`'s label distribution, for the samples of a
    conditional generator; None for a dataset without labels."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return None
    counts = torch.bincount(torch.as_tensor(labels), minlength=len(dataset.class_names)).double()
    return torch.multinomial(counts, num, replacement=True, generator=torch.Generator().manual_seed(seed))


def dataset_key(label: str, dataset: Dataset) -> str:
    """What identifies a dataset's contents for the statistics cache.

    A data_prep dataset carries a manifest whose `files` entry lists every array with its checksum;
    a plain image folder has none, so its key is its path and length only (edit the folder in place
    and the cache is stale: delete `$GAN_STUDIO_CACHE/fid-stats` then).
    """
    manifest = getattr(dataset, "manifest", None) or {}
    path = str(Path(label).resolve()) if label else "builtin-openmoji"
    return json.dumps({"data": path, "files": manifest.get("files"), "length": len(dataset)}, sort_keys=True)


def gather_in_order(accelerator: Accelerator, local: torch.Tensor, num: int) -> torch.Tensor:
    """Rows i = rank + k * world from every process -> [num, D] in sample order, on every process."""
    world = accelerator.num_processes
    if world == 1:
        return local.cpu()
    per_rank = -(-num // world)
    padded = torch.zeros(per_rank, local.shape[1], device=accelerator.device, dtype=local.dtype)
    padded[: local.shape[0]] = local.to(accelerator.device)  # equal lengths, so gather works
    gathered = accelerator.gather(padded)  # [world * per_rank, D], rank-major
    by_sample = gathered.view(world, per_rank, -1).transpose(0, 1).reshape(world * per_rank, -1)
    return by_sample[:num].cpu()  # row k * world + r is sample r + k * world; padding falls off the end


def _agree(accelerator: Accelerator, flag: bool) -> bool:
    """The main process's `flag`, on every process."""
    if accelerator.num_processes == 1:
        return flag
    return bool(broadcast(torch.tensor([float(flag)], device=accelerator.device), from_process=0)[0] > 0)


def _shard(accelerator: Accelerator, num: int) -> range:
    if num < accelerator.num_processes:
        raise ValueError(f"need at least one image per process: {num} images for {accelerator.num_processes}")
    return range(accelerator.process_index, num, accelerator.num_processes)


REAL_SUBSET_SEED = 0  # which random subset of the reals a partial evaluation uses (fixed: comparable runs)


def real_subset(size: int, num: int) -> list[int] | None:
    """``num`` of ``size`` dataset indices drawn at random with a fixed seed (sorted, for locality), or
    None when ``num`` covers the whole dataset."""
    if num >= size:
        return None
    perm = torch.randperm(size, generator=torch.Generator().manual_seed(REAL_SUBSET_SEED))
    return sorted(perm[:num].tolist())


def distributed_real_statistics(
    accelerator: Accelerator,
    dataset: Dataset,
    network: FeatureNetwork,
    *,
    num: int,
    dataset_key: str,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> RealStatistics | None:
    """Statistics of `num` real images (cached); returned on the main process only.

    All of them when `num` covers the dataset; otherwise a seeded random subset (`real_subset`), never
    the first `num` by storage order: a dataset stored by name or class is not in random order, and
    its first images are a biased sample of it (the OpenMoji set's first 1,000 are faces and people).
    Raises `EvaluationStopped` (on every process, nothing cached) once `should_stop()` is true on any."""
    order = real_subset(len(dataset), num)
    key = dataset_key if order is None else dataset_key + f"|random-subset-seed{REAL_SUBSET_SEED}"
    cache = real_cache(dataset, network, dataset_key=key, num=num, cache_dir=cache_dir)
    cached = cache.load() if accelerator.is_main_process else None
    if _agree(accelerator, cached is not None):
        return cached
    shard = _shard(accelerator, num)
    indices = list(shard) if order is None else [order[i] for i in shard]
    poll = _StopPoll(accelerator, should_stop) if should_stop is not None else None
    local = _polled(poll, accelerator, num, batch_size, lambda after_batch: compute_features(
        Subset(dataset, indices), network, batch_size=batch_size, device=accelerator.device,
        progress=progress, desc="eval: real features", after_batch=after_batch))
    features = gather_in_order(accelerator, local, num)
    if not accelerator.is_main_process:
        return None
    stats = statistics_of(features)
    cache.save(stats)
    return stats


def evaluate_generator(
    generator: torch.nn.Module,
    dataset: Dataset,
    network: FeatureNetwork,
    *,
    accelerator: Accelerator,
    num: int,
    dataset_key: str,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    seed: int = 0,
    generator_kwargs: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = ("fid", "kid", "pr"),
    num_real: int | None = None,
    progress: bool = False,
    labels: torch.Tensor | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, float] | None:
    """FID/KID/precision/recall of `num` generated samples against `num_real` real images (default
    `num`; capped at the dataset size; NVIDIA's "*_full" metrics use them all), a seeded random
    subset when fewer than all (`real_subset`).

    Grayscale and RGBA images (generated or real) reach the network as RGB: gray replicated, RGBA
    composited onto `background` (`progan.metrics.channels`).

    Every process must call this (collective). The caller's RNG state is left untouched, so
    evaluating in the middle of training does not change the training run. With `should_stop`, every
    process raises `EvaluationStopped` within one batch of it becoming true on any process. A
    conditional generator's sample i has class `labels[i]` (default: drawn from the dataset's label
    distribution).
    """
    if getattr(getattr(generator, "config", None), "num_classes", 0) and labels is None:
        labels = labels_like_dataset(dataset, num, seed=seed)
        if labels is None:
            raise ValueError("a conditional generator needs a dataset with labels (or explicit labels)")
    num_real = min(num if num_real is None else num_real, len(dataset))
    if num < 2 or num_real < 2:
        raise ValueError(f"need at least 2 generated and 2 real images, got {num} and {num_real}")
    channels = (generator.config.image_channels, int(getattr(dataset, "channels", 3)))
    network = rgb_view(network, channels=channels, background=background)
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    # fork_rng: DataLoaders and StyleGAN's noise draw from the global generator; training must not notice.
    with torch.random.fork_rng(devices=devices):
        real = distributed_real_statistics(accelerator, dataset, network, num=num_real, dataset_key=dataset_key,
                                           cache_dir=cache_dir, batch_size=batch_size, progress=progress,
                                           should_stop=should_stop)
        # StyleGAN noise: fixed per process, seeded after the reals. Computing them (a cold cache) draws from
        # the global generator (the DataLoader's seed) and loading them does not: seeded before, the same
        # evaluation scored differently with and without cached statistics.
        torch.manual_seed(seed * 1000 + 7 + accelerator.process_index)
        poll = _StopPoll(accelerator, should_stop) if should_stop is not None else None
        local = _polled(poll, accelerator, num, batch_size, lambda after_batch: generated_features(
            generator, network, num=num, batch_size=batch_size, seed=seed, device=accelerator.device,
            generator_kwargs=generator_kwargs, indices=_shard(accelerator, num), progress=progress,
            desc="eval: generated", after_batch=after_batch, labels=labels))
    fake = gather_in_order(accelerator, local, num)
    if not accelerator.is_main_process:
        return None
    return compute_metrics(real.features, fake, metrics=metrics, real_stats=(real.mu, real.sigma), seed=seed,
                           kid_subset_size=min(1000, num, num_real), device=accelerator.device)


class PeriodicEvaluator:
    """FID & co. of the EMA generator every N kimg of training, at the stage being trained.

    The feature network is loaded on first use (from `network_path`, $GAN_STUDIO_INCEPTION or the
    `metrics` extra), so a run without `--eval-kimg` never needs it. `network` injects another
    feature network (tests use a tiny stand-in).
    """

    def __init__(self, accelerator: Accelerator, *, num: int, data_label: str, network_path: str | None = None,
                 network: FeatureNetwork | None = None, cache_dir: str | Path | None = None,
                 batch_size: int = 64, seed: int = 0) -> None:
        self.accelerator, self.num, self.data_label = accelerator, num, data_label
        self.network_path, self.network, self.cache_dir = network_path, network, cache_dir
        self.batch_size, self.seed = batch_size, seed

    def load(self) -> FeatureNetwork:
        """Load the feature network now (the trainer does so at start, to fail before training)."""
        if self.network is None:
            from .inception import load_feature_network

            self.network = load_feature_network(self.network_path or None, device=self.accelerator.device)
        return self.network

    def __call__(self, generator: torch.nn.Module, dataset: Dataset, *, stage: int, alpha: float,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, float] | None:
        """Metrics at (stage, alpha) against reals at that stage's resolution; main process only.
        Progress bars on the main process (this process's share of the images); raises
        `EvaluationStopped` on every process within one batch of `should_stop()` on any."""
        network = self.load()
        return evaluate_generator(generator, dataset, network, accelerator=self.accelerator, num=self.num,
                                  dataset_key=dataset_key(self.data_label, dataset), cache_dir=self.cache_dir,
                                  batch_size=self.batch_size, seed=self.seed,
                                  generator_kwargs={"stage": stage, "alpha": alpha},
                                  progress=self.accelerator.is_main_process, should_stop=should_stop)
