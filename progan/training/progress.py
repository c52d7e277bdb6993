"""The training progress bar: its rate and ETA count training steps only.

tqdm estimates the rate from the time between updates (an exponential moving average) and the
elapsed time since the start. An evaluation, a sample grid or a checkpoint that stalls the loop for
minutes would count as training time: right after a long evaluation the bar read an ETA of 144 hours
(issue 20). ``excluded_from_rate`` moves the bar's clock forward by the stall, as if it had not happened.

``RunClock`` is the run's own clock for the log: wall-clock and CPU seconds summed over every session
of a run (checkpointed, so a resumed run continues the sums), everything included (evaluations,
samples, checkpoints). CPU seconds are the training process's own (``time.process_time``: all its
threads; not its data-loader workers, and on many processes the main process only): the measure for
comparing runs "at equal CPU-hours" when other jobs share the machine and wall clock overstates.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

__all__ = ["excluded_from_rate", "RunClock"]


@contextmanager
def excluded_from_rate(bar: tqdm) -> Iterator[None]:
    """Time spent inside the block counts neither in the bar's elapsed time nor in its rate."""
    if bar.disable:  # a disabled bar (other processes) keeps no clock
        yield
        return
    started = bar._time()
    try:
        yield
    finally:
        stall = bar._time() - started
        bar.start_t += stall       # elapsed time and the average rate
        bar.last_print_t += stall  # the next update's interval, which feeds the smoothed rate


class RunClock:
    """Cumulative (wall, CPU) seconds of a run across resumes; runs between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.wall_seconds, self.cpu_seconds = 0.0, 0.0
        self._mark: tuple[float, float] | None = None   # (time.time(), time.process_time()) at start

    def start(self) -> None:
        self._mark = (time.time(), time.process_time())

    def stop(self) -> None:
        self.wall_seconds, self.cpu_seconds = self.read()
        self._mark = None

    def read(self) -> tuple[float, float]:
        if self._mark is None:
            return self.wall_seconds, self.cpu_seconds
        wall, cpu = self._mark
        return self.wall_seconds + time.time() - wall, self.cpu_seconds + time.process_time() - cpu

    def state_dict(self) -> dict[str, float]:
        wall, cpu = self.read()
        return {"wall_seconds": wall, "cpu_seconds": cpu}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wall_seconds, self.cpu_seconds = float(state["wall_seconds"]), float(state["cpu_seconds"])
        if self._mark is not None:
            self.start()
