"""A resumable, deterministic stream of training images shared out between processes.

The global stream is epoch after epoch of seeded permutations of the dataset; process ``r`` of
``W`` takes global positions ``r, r + W, r + 2W, ...``. A process that has consumed ``c`` images
restarts at global position ``c * W + r``, so resuming (or changing the batch size at a new
resolution) continues the exact same sequence. A run resumed on a different number of processes
continues at the same *global* position (``rescale_consumed``), so no image is repeated or skipped
beyond the rounding of one step. Images arrive as uint8 and are converted on device. A labelled
dataset (``ImageDataset(with_labels=True)``) yields ``(images, labels)`` batches; ``split_batch``
takes either kind apart.
"""
from __future__ import annotations

import signal
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["StreamSampler", "make_loader", "rescale_consumed", "to_float_images", "split_batch"]


class StreamSampler(Sampler[int]):
    def __init__(self, size: int, *, seed: int, rank: int, world_size: int, consumed: int = 0) -> None:
        if size < 1:
            raise ValueError("the dataset is empty")
        self.size, self.seed, self.rank, self.world_size, self.consumed = size, seed, rank, world_size, consumed

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))

    def __iter__(self) -> Iterator[int]:
        position = self.consumed * self.world_size + self.rank
        epoch, perm = -1, None
        while True:
            e, i = divmod(position, self.size)
            if e != epoch:
                epoch, perm = e, self._permutation(e)
            yield int(perm[i])
            position += self.world_size


def rescale_consumed(consumed: int, *, saved_world_size: int, world_size: int) -> int:
    """Images per process that put ``world_size`` processes where ``saved_world_size`` stopped.

    ``saved_world_size`` processes that each consumed ``consumed`` images have read global positions
    ``0 .. consumed * saved_world_size - 1``; the new processes restart right after them.
    """
    return consumed * saved_world_size // world_size


def _ignore_stop_signals(_worker_id: int) -> None:
    # Schedulers signal the whole process group on preemption; workers must not die before the
    # main process has agreed with the other ranks on a step and saved a checkpoint.
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def make_loader(dataset: Dataset, *, batch_size: int, seed: int, rank: int, world_size: int, consumed: int,
                workers: int, pin_memory: bool) -> Iterator[torch.Tensor]:
    sampler = StreamSampler(len(dataset), seed=seed, rank=rank, world_size=world_size, consumed=consumed)
    # A private generator: creating an iterator must not draw from the global RNG, or a resumed run
    # (which creates its iterator at a different moment) would diverge from an uninterrupted one.
    base = torch.Generator().manual_seed(seed * 7919 + consumed * 31 + rank)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        drop_last=True, pin_memory=pin_memory, persistent_workers=False, generator=base,
                        worker_init_fn=_ignore_stop_signals)
    return iter(loader)


def to_float_images(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` -> float32 in [-1, 1] on ``device`` (the division happens there)."""
    return batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def split_batch(batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | list[torch.Tensor],
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A loader batch -> (float images in [-1, 1], int64 labels ``[N]`` or None) on ``device``."""
    if isinstance(batch, (tuple, list)):
        images, labels = batch
        return to_float_images(images, device), labels.to(device, non_blocking=True).long()
    return to_float_images(batch, device), None
