"""The data stream shared out between processes (progan/training/data_stream.py) and checkpoint pruning.

Properties, not snapshots: within an epoch the ranks' shares are disjoint and together cover the
dataset exactly once; a resumed sampler continues the uninterrupted stream; a run resumed on another
process count continues at the same global position (``rescale_consumed``). ``save_checkpoint`` keeps
only the newest ``keep`` checkpoints (``--keep-checkpoints``), writes each rank's RNG state to
``rng-rank{r}.pt`` (the name progan/training/checkpoint.py documents) and ``load_checkpoint`` hands
each rank its own back: the random streams continue after a resume as if nothing had stopped.
"""
from __future__ import annotations

import threading
from itertools import islice
from pathlib import Path

import pytest
import torch

from progan.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from progan.training.data_stream import StreamSampler, make_loader, rescale_consumed
from rank_threads import run_ranks


def _take(sampler: StreamSampler, n: int) -> list[int]:
    return list(islice(iter(sampler), n))


@pytest.mark.parametrize("size, world", [(12, 2), (12, 3), (10, 4), (7, 1)])
def test_ranks_split_each_epoch_disjoint_and_covering(size, world):
    epochs = 3
    per_rank = size * epochs // world
    shares = [_take(StreamSampler(size, seed=5, rank=r, world_size=world), per_rank) for r in range(world)]
    # interleave back into the global stream: position p belongs to rank p % world
    stream = [shares[p % world][p // world] for p in range(per_rank * world)]
    for e in range(per_rank * world // size):
        epoch = stream[e * size:(e + 1) * size]
        assert sorted(epoch) == list(range(size)), f"epoch {e} is not a permutation"
    first_epoch = [set(s[: size // world]) for s in shares]
    for a in range(world):
        for b in range(a + 1, world):
            assert not first_epoch[a] & first_epoch[b], f"ranks {a} and {b} read the same images"
    if world > 1 and size % world == 0:
        assert set().union(*first_epoch) == set(range(size))


def test_a_one_image_dataset_streams_and_an_empty_one_is_refused():
    """One image is a dataset: every epoch is the permutation of one index, so the stream is that index
    over and over (two ranks included); zero images is refused in one line."""
    assert _take(StreamSampler(1, seed=0, rank=0, world_size=1), 5) == [0] * 5
    assert _take(StreamSampler(1, seed=0, rank=1, world_size=2, consumed=3), 4) == [0] * 4
    with pytest.raises(ValueError, match="the dataset is empty"):
        StreamSampler(0, seed=0, rank=0, world_size=1)


def test_epochs_are_reshuffled_and_seeded():
    first, second = (_take(StreamSampler(50, seed=1, rank=0, world_size=1), 100)[i * 50:(i + 1) * 50] for i in (0, 1))
    assert first != second and sorted(first) == sorted(second)
    assert _take(StreamSampler(50, seed=1, rank=0, world_size=1), 20) != _take(
        StreamSampler(50, seed=2, rank=0, world_size=1), 20)


@pytest.mark.parametrize("consumed", [0, 5, 13])
def test_resumed_sampler_continues_the_stream(consumed):
    whole = _take(StreamSampler(9, seed=3, rank=1, world_size=2), consumed + 10)
    resumed = _take(StreamSampler(9, seed=3, rank=1, world_size=2, consumed=consumed), 10)
    assert resumed == whole[consumed:]


@pytest.mark.parametrize("before, after", [(2, 1), (1, 2), (2, 4), (4, 2)])
def test_resume_on_another_process_count_continues_the_global_stream(before, after):
    size, per_rank = 11, 6  # consumed per process when the run stopped
    global_stream = _take(StreamSampler(size, seed=7, rank=0, world_size=1), 200)
    read = sorted(p for r in range(before) for p in range(r, per_rank * before, before))
    assert read == list(range(per_rank * before))  # the first run read a prefix of the global stream
    consumed = rescale_consumed(per_rank, saved_world_size=before, world_size=after)
    assert consumed * after == per_rank * before
    nxt = [_take(StreamSampler(size, seed=7, rank=r, world_size=after, consumed=consumed), 3) for r in range(after)]
    # the next images come from global positions consumed*after + r + k*after, nothing repeated
    for r in range(after):
        assert nxt[r] == [global_stream[consumed * after + r + k * after] for k in range(3)]


def test_checkpoint_pruning_keeps_the_newest(tmp_path: Path):
    root = tmp_path / "checkpoints"
    for images in (8, 16, 24, 32, 40):
        save_checkpoint(root, images_seen=images, state={"images_seen": images}, rank_state={"x": torch.zeros(1)},
                        rank=0, barrier=lambda: None, keep=2)
    assert [p.name for p in list_checkpoints(root)] == ["ckpt-000000.032", "ckpt-000000.040"]
    assert sorted(p.name for p in root.iterdir()) == ["ckpt-000000.032", "ckpt-000000.040"]  # no tmp left
    save_checkpoint(root, images_seen=48, state={}, rank_state={}, rank=0, barrier=lambda: None, keep=1)
    assert [p.name for p in list_checkpoints(root)] == ["ckpt-000000.048"]


def test_each_rank_gets_its_own_rng_state_back(tmp_path: Path):
    # two ranks as two threads at one barrier: the collective save as the launcher runs it
    root, world = tmp_path / "checkpoints", 2
    streams = [torch.Generator().manual_seed(100 + r) for r in range(world)]
    for r, stream in enumerate(streams):
        torch.rand(3 + r, generator=stream)                      # somewhere into each rank's stream
    barrier = threading.Barrier(world, timeout=60)

    def rank(r: int) -> None:
        save_checkpoint(root, images_seen=64, state={"images_seen": 64} if r == 0 else None,
                        rank_state={"torch_rng": streams[r].get_state()}, rank=r, barrier=barrier.wait, keep=2)

    run_ranks(world, rank, barrier)
    ckpt = latest_checkpoint(root)
    assert sorted(p.name for p in ckpt.iterdir()) == ["rng-rank0.pt", "rng-rank1.pt", "state.pt"]  # documented names
    after_save = [torch.rand(8, generator=stream) for stream in streams]   # what an uninterrupted run draws next
    for r, stream in enumerate(streams):
        stream.manual_seed(999)                                   # the stream moves on (or a new process starts)
        state, rank_state = load_checkpoint(ckpt, rank=r)
        assert state == {"images_seen": 64} and rank_state is not None, r
        stream.set_state(rank_state["torch_rng"])
        assert torch.equal(torch.rand(8, generator=stream), after_save[r]), r  # its own stream, not the other rank's
    assert load_checkpoint(ckpt, rank=world)[1] is None            # a rank that did not exist when saved


def test_trainer_resume_continues_the_torch_random_stream(tmp_path):
    # the trainer's only random source is torch's global generator (python's random and numpy are not used
    # in training, so a checkpoint does not hold them): after a resume it draws what it would have drawn
    from accelerate import Accelerator

    import data_prep
    from families import FAMILIES
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "images", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), kimg=0.024,
                         batch_size=4, workers=0, log_every=100)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    torch.rand(5)                                                 # somewhere into the stream
    ckpt = trainer.save()
    assert (ckpt / "rng-rank0.pt").is_file()
    after_save = torch.rand(16)
    torch.manual_seed(12345)
    torch.rand(7)
    assert trainer.try_resume() == ckpt
    assert torch.equal(torch.rand(16), after_save)


def test_trainer_prunes_with_keep_checkpoints(tmp_path):
    from accelerate import Accelerator

    import data_prep
    from families import FAMILIES
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)}
    data = make_image_folder(tmp_path / "images", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), kimg=0.024,
                         batch_size=4, fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=0.008, sample_kimg=1,
                         workers=0, log_every=100, keep_checkpoints=2)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    try:
        trainer.train()
    finally:
        for sig, handler in saved.items():  # the trainer installs stop handlers
            signal.signal(sig, handler)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["ckpt-000000.016",
                                                                                      "ckpt-000000.024"]


def test_to_float_images_maps_uint8_onto_minus_one_one():
    from progan.training.data_stream import to_float_images

    batch = torch.tensor([0, 127, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2)
    out = to_float_images(batch, torch.device("cpu"))
    torch.testing.assert_close(out.flatten(), torch.tensor([-1.0, 127 / 127.5 - 1, 128 / 127.5 - 1, 1.0]))


@pytest.mark.parametrize("before, per_rank, after", [(2, 3, 4), (3, 5, 2), (4, 3, 5), (1, 7, 2)])
def test_resume_on_a_process_count_that_does_not_divide_skips_nothing(before, per_rank, after):
    """``before`` processes read global positions 0 .. per_rank * before - 1; when ``after`` does not
    divide that, the new processes must restart at or before the first unread position (no image
    skipped) and less than one new global step earlier (each process repeats at most one image)."""
    read = per_rank * before
    assert read % after  # the case the divisible test above cannot see
    consumed = rescale_consumed(per_rank, saved_world_size=before, world_size=after)
    restart = consumed * after                    # global position of the new rank 0's first image
    assert read - after < restart <= read
    size = 50                                      # one epoch: positions are indices of one permutation
    global_stream = _take(StreamSampler(size, seed=5, rank=0, world_size=1), size)
    first = sorted(global_stream.index(_take(StreamSampler(size, seed=5, rank=r, world_size=after,
                                                           consumed=consumed), 1)[0]) for r in range(after))
    assert first == list(range(restart, restart + after)) and read in first  # the first unread image comes next


class _WhoLoaded(torch.utils.data.Dataset):
    """Item i is ``[i, id of the worker that loaded it]`` (-1: the main process)."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> torch.Tensor:
        info = torch.utils.data.get_worker_info()
        return torch.tensor([i, -1 if info is None else info.id])


def test_workers_load_in_that_many_processes_and_keep_the_stream():
    """--workers 2: every batch comes from one of 2 worker processes, in the same order as --workers 0."""
    def batches(workers):
        loader = make_loader(_WhoLoaded(), batch_size=3, seed=5, rank=0, world_size=1, consumed=0, workers=workers,
                             pin_memory=False)
        return [next(loader) for _ in range(8)]                         # two epochs of 4 batches

    alone, pooled = batches(0), batches(2)
    assert all((b[:, 1] == -1).all() for b in alone)
    assert {int(w) for b in pooled for w in b[:, 1]} == {0, 1}
    assert [b[:, 0].tolist() for b in pooled] == [b[:, 0].tolist() for b in alone]


def test_loader_workers_ignore_the_schedulers_stop_signals(restore_signals):
    """The init function each data-loader worker runs: SIGTERM, SIGUSR1 and SIGINT all ignored. A
    scheduler signals the whole process group on preemption; the workers must outlive the main process's
    agreement on a step and its checkpoint (the main process ends them itself). Each signal starts at
    its default here, since a shell's background job may start with some already ignored."""
    import signal

    from progan.training.data_stream import _ignore_stop_signals

    stops = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
    for sig in stops:
        signal.signal(sig, signal.SIG_DFL)
    _ignore_stop_signals(0)
    assert {sig: signal.getsignal(sig) for sig in stops} == {sig: signal.SIG_IGN for sig in stops}
