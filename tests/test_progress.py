"""The training bar's ETA does not count evaluation stalls."""
from __future__ import annotations

import io

from tqdm import tqdm

from progan.training.progress import excluded_from_rate


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _bar(clock: _Clock) -> tqdm:
    bar = tqdm(total=100, file=io.StringIO(), mininterval=0, miniters=1, delay=0)
    bar._time = clock  # tqdm reads its clock through self._time
    bar.start_t = bar.last_print_t = clock()
    return bar


def _train(bar: tqdm, clock: _Clock, steps: int) -> None:
    for _ in range(steps):  # 2 units per second of training
        clock.now += 1.0
        bar.update(2)


def test_a_stall_inside_the_block_changes_neither_rate_nor_elapsed_time():
    clock = _Clock()
    bar = _bar(clock)
    _train(bar, clock, 10)
    with excluded_from_rate(bar):
        clock.now += 3600.0  # an hour of evaluation
    _train(bar, clock, 10)
    info = bar.format_dict
    assert info["elapsed"] == 20.0                        # training time only
    assert abs(info["rate"] - 2.0) < 1e-9                 # the smoothed rate: 2 units per second
    assert abs((info["total"] - info["n"]) / info["rate"] - 30.0) < 1e-6  # ETA of the 60 units left

    # the same run without the exclusion: the stall drags the smoothed rate down by orders of magnitude
    clock, plain = _Clock(), None
    plain = _bar(clock)
    _train(plain, clock, 10)
    clock.now += 3600.0
    _train(plain, clock, 10)
    assert plain.format_dict["rate"] < 1.0 and plain.format_dict["elapsed"] > 3600


def test_a_disabled_bar_is_left_alone():
    bar = tqdm(total=10, disable=True)
    with excluded_from_rate(bar):
        pass
    assert bar.disable
