"""Threads standing in for the processes of a multi-process run, for tests that check values across ranks
without launching processes (a real launch takes about a minute: tests/test_rank_data.py, slow).

``run_ranks(world, work)`` runs ``work(rank)`` on ``world`` threads and returns each rank's result, raising
the first error any rank raised (after aborting the shared barrier, so no other rank waits for it forever).
Two collectives built on one barrier: ``ThreadSum`` (``dist.all_reduce`` with SUM, what the training
iteration's ``reduce_options`` take) and ``ThreadAccelerator`` (accelerate's ``gather``, rank-major).
"""
from __future__ import annotations

import threading
from typing import Callable

import torch


class ThreadSum:
    """``dist.all_reduce`` (SUM) among ``world`` threads: each thread's flat tensor becomes the sum over threads."""

    def __init__(self, world: int, timeout: float = 60) -> None:
        self.world, self.barrier, self.parts = world, threading.Barrier(world, timeout=timeout), {}

    def for_rank(self, rank: int):
        def all_reduce(flat: torch.Tensor) -> None:
            self.parts[rank] = flat.clone()
            self.barrier.wait()
            total = sum(self.parts[r] for r in range(self.world))
            self.barrier.wait()
            flat.copy_(total)
        return all_reduce


class ThreadAccelerator:
    """``num_processes``/``process_index``/``device``/``gather`` for one of ``world`` threads."""

    def __init__(self, rank: int, world: int, exchange: dict, barrier: threading.Barrier) -> None:
        self.process_index, self.num_processes, self.device = rank, world, torch.device("cpu")
        self._exchange, self._barrier = exchange, barrier

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        self._exchange[self.process_index] = tensor.clone()
        self._barrier.wait()
        result = torch.cat([self._exchange[r] for r in range(self.num_processes)])  # rank-major, like accelerate
        self._barrier.wait()
        return result


def run_ranks(world: int, work: Callable[[int], object], barrier: threading.Barrier, timeout: float = 120) -> list:
    """``[work(0), ..., work(world - 1)]``, each on its own thread; ``barrier`` is the collective's, aborted
    when a rank fails so the others raise instead of waiting."""
    results, errors = [None] * world, []

    def run(rank: int) -> None:
        try:
            results[rank] = work(rank)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a rank did not finish"
    return results
