"""The training progress bar: its rate and ETA count training steps only.

tqdm estimates the rate from the time between updates (an exponential moving average) and the
elapsed time since the start. An evaluation, a sample grid or a checkpoint that stalls the loop for
minutes would count as training time: right after a long evaluation the bar read an ETA of 144 hours
(issue 20). ``excluded_from_rate`` moves the bar's clock forward by the stall, as if it had not happened.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["excluded_from_rate"]


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
