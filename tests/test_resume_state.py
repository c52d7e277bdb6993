"""Everything a checkpoint holds arrives back on resume (``progan/training/resume.py``).

A field that is saved but not restored (or restored from the wrong key) is invisible to a resume
that only checks weights: the run continues, and only later does something go wrong (a best-FID
export overwritten by a worse model, ADA restarting at p = 0, the sample latents changing). So the
test sets every saved scalar to a value no fresh trainer has, trains two steps so the optimizers
have moments, saves, resumes in a fresh trainer, and requires the resumed trainer's own state to be
the saved state, entry by entry, bit for bit, with no entry left at its fresh value. What a resume can
find: ``--keep-checkpoints K`` leaves exactly the newest K checkpoints after every save, and a save
killed midway leaves a ``.tmp-`` dir that the next save at that kimg replaces.
Each rank's RNG comes back only on the process count that saved it (else a warning); the first logged
speed after a start or a resume counts only that session's images and seconds.
"""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator

from data_prep import open_dataset
from families import FAMILIES
from progan.training.options import TrainConfig
from progan.training.trainer import Trainer
from train_utils import assert_states_equal, load_state, make_image_folder

# the saved scalars and tensors set by hand below; a fresh trainer has other values for each
SET_BY_HAND = ("images_seen", "step", "consumed", "best_fid", "augment_p", "opt_lod", "sample_z", "clock")


@pytest.fixture
def build(tmp_path):
    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, workers=0, loss="logistic_r1", augment="ada", historical_averaging=0.5,
                         kimg=0.008, checkpoint_kimg=10, sample_kimg=10, progressive=False)

    def make() -> Trainer:
        return Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                       accelerator=Accelerator(cpu=True))
    return make


def test_every_saved_entry_arrives_back_on_resume(build):
    first = build()
    first.train()                                   # two steps: Adam moments, EMA, history sums exist
    first.images_seen, first.step, first.consumed = 1234, 77, 1300
    first.best_fid = 42.5
    first.ada.p = first.augment.p = 0.37
    first._opt_lod = 1.5
    first.clock.load_state_dict({"wall_seconds": 3600.5, "cpu_seconds": 7000.25})
    first.sample_z = torch.randn_like(first.sample_z)
    first._ada_signs += torch.tensor([5.0, 12.0], dtype=torch.float64)
    saved, saved_rank = first._state(), first._rank_state()
    path = first.save()
    assert_states_equal(load_state(path, clock=True), saved)    # what was written is what the trainer held

    fresh = build()
    fresh_state = fresh._state()
    for key in SET_BY_HAND:                         # each value differs from a fresh trainer's: the test can fail
        same = (torch.equal(saved[key], fresh_state[key]) if isinstance(saved[key], torch.Tensor)
                else saved[key] == fresh_state[key])
        assert not same, key
    assert fresh.try_resume() == path
    assert_states_equal(fresh._state(), saved)
    resumed_rank = fresh._rank_state()
    assert_states_equal({k: resumed_rank[k] for k in ("torch_rng", "weights_digest", "ada_signs")},
                        {k: saved_rank[k] for k in ("torch_rng", "weights_digest", "ada_signs")})


def test_a_checkpoint_from_before_best_fid_resumes_with_none(build):
    first = build()
    first.best_fid = 42.5
    path = first.save()
    state = load_state(path, clock=True)
    del state["best_fid"]                           # checkpoints older than --eval-kimg
    torch.save(state, path / "state.pt")
    resumed = build()
    assert resumed.try_resume() == path
    assert resumed.best_fid == math.inf


def test_the_run_clock_sums_wall_and_cpu_seconds_over_sessions(monkeypatch):
    """RunClock against fake clocks: each session adds its own (wall, CPU) seconds; a loaded state is
    continued, not restarted."""
    import progan.training.progress as progress

    now = {"wall": 100.0, "cpu": 10.0}
    monkeypatch.setattr(progress.time, "time", lambda: now["wall"])
    monkeypatch.setattr(progress.time, "process_time", lambda: now["cpu"])
    clock = progress.RunClock()
    assert clock.read() == (0.0, 0.0)
    clock.start()
    now.update(wall=130.0, cpu=25.0)
    assert clock.read() == (30.0, 15.0)
    clock.stop()
    now.update(wall=500.0, cpu=40.0)                # time between sessions does not count
    assert clock.state_dict() == {"wall_seconds": 30.0, "cpu_seconds": 15.0}
    resumed = progress.RunClock()
    resumed.load_state_dict(clock.state_dict())
    resumed.start()
    now.update(wall=510.0, cpu=42.5)
    assert resumed.read() == (40.0, 17.5)


def test_the_log_clock_continues_across_a_resume(build, tmp_path, capsys):
    import json

    first = build()
    first.train()
    build_longer = TrainConfig(**{**first.config.__dict__, "kimg": 0.016})
    second = Trainer(build_longer, FAMILIES["stylegan_lite"], first.open_dataset, accelerator=Accelerator(cpu=True))
    second.train()
    assert " at 0.008 kimg" in capsys.readouterr().out  # the resume message: 8 images, the first run's --kimg
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "g_loss" in r]
    assert [r["step"] for r in steps] == [2, 4]        # each session logs its last step (--log-every 10)
    for key in ("wall_s", "cpu_s"):
        values = [r[key] for r in records]
        assert all(v >= 0 for v in values) and values == sorted(values), (key, values)
    saved = load_state(max((tmp_path / "run" / "checkpoints").iterdir()), clock=True)["clock"]
    # the log rounds to 0.1 s: the checkpoint, saved after the last record, holds at least its value less 0.05
    assert saved["wall_seconds"] >= steps[-1]["wall_s"] - 0.05 and saved["cpu_seconds"] >= steps[-1]["cpu_s"] - 0.05


def _files(root):
    """Every file under ``root`` with its bytes: compared before and after a refused resume."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_refused_losing_nothing(trainer, run, *needles):
    """``trainer.try_resume()`` is refused with one line holding every needle, and changes no file under
    ``run``, no weight and no image count."""
    before, digest = _files(run), trainer.weights_digest()
    with pytest.raises(ValueError) as info:
        trainer.try_resume()
    message = str(info.value)
    assert "\n" not in message and all(needle in message for needle in needles), message
    assert _files(run) == before and trainer.weights_digest() == digest and trainer.images_seen == 0


def test_a_resume_into_another_family_or_other_classes_is_a_one_line_refusal_that_loses_nothing(build, tmp_path):
    """README: a run resumes only as the same family and classes; anything else is refused with one
    line naming the checkpoint and the way out (another --out), before a single weight is loaded."""
    own = build()
    progan_config = TrainConfig(**{**own.config.__dict__, "family": "progan", "augment": "none",
                                   "historical_averaging": 0.0, "loss": "wgan_gp"})
    other = Trainer(progan_config, FAMILIES["progan"], own.open_dataset, accelerator=Accelerator(cpu=True))
    path = other.save()                                 # a ProGAN run's checkpoint in this --out
    _assert_refused_losing_nothing(own, tmp_path / "run", str(path), "progan run", "--family")

    latest = own.save()                                 # now a stylegan_lite checkpoint trained on two classes
    torch.save({**load_state(latest, clock=True), "class_names": ["cat", "dog"]}, latest / "state.pt")
    _assert_refused_losing_nothing(build(), tmp_path / "run", str(latest), "['cat', 'dog']", "--out")


def test_a_resume_runs_adam_with_the_new_commands_lr_and_betas_and_the_checkpoints_moments(tmp_path):
    """Optimizer.load_state_dict alone would bring back the checkpoint's lr and betas: a resume with
    another --d-lr, --g-lr and --adam-beta2 must train with the new values (what the command asks), while
    Adam's moments and step counts are the checkpoint's, bit for bit."""
    data = make_image_folder(tmp_path / "data")
    base = dict(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                workers=0, loss="logistic_r1", progressive=False, checkpoint_kimg=10, sample_kimg=10,
                adam_beta1=0.0)

    def trainer(**options) -> Trainer:
        return Trainer(TrainConfig(**{**base, **options}), FAMILIES["stylegan_lite"],
                       lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))

    first = trainer(kimg=0.008, d_lr=0.002, g_lr=0.001, adam_beta2=0.99)
    first.train()
    saved = {name: getattr(first, name).state_dict()["state"] for name in ("opt_d", "opt_g")}
    first.save()

    resumed = trainer(kimg=0.016, d_lr=0.003, g_lr=0.0005, adam_beta2=0.9)
    assert resumed.try_resume() is not None
    for name, lr in (("opt_d", 0.003), ("opt_g", 0.0005)):
        optimizer = getattr(resumed, name)
        for group in optimizer.param_groups:
            assert group["lr"] == lr and tuple(group["betas"]) == (0.0, 0.9), name
        state = optimizer.state_dict()["state"]
        assert state.keys() == saved[name].keys() and len(state) > 0
        for k, moments in saved[name].items():
            assert_states_equal(state[k], moments)


def test_a_resume_skips_a_newer_checkpoint_without_its_state_and_an_unfinished_one(build, tmp_path):
    """Only a checkpoint whose state.pt is there counts: a newer directory holding a rank's RNG file
    alone (state.pt lost: a copy cut short, a full disk) and a newer ``.tmp-`` directory (a save that
    never finished its rename) are passed over, and the run resumes from the complete one."""
    import shutil

    first = build()
    first.images_seen, first.step = 400, 100
    complete = first.save()
    root = tmp_path / "run" / "checkpoints"
    partial = root / "ckpt-000009.000"
    partial.mkdir()
    shutil.copy(complete / "rng-rank0.pt", partial / "rng-rank0.pt")
    shutil.copytree(complete, root / ".tmp-ckpt-000010.000")
    resumed = build()
    assert resumed.try_resume() == complete
    assert (resumed.images_seen, resumed.step) == (400, 100)


def test_a_resume_with_another_minibatch_discrimination_is_a_one_line_refusal(tmp_path):
    """D's layers depend on --minibatch-discrimination: a checkpoint trained with 8,4 resumed with 6,4 or
    without it is refused in one line naming the option, before a weight or a count is loaded."""
    data = make_image_folder(tmp_path / "data")
    base = dict(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4, workers=0)

    def trainer(option: str) -> Trainer:
        return Trainer(TrainConfig(**base, minibatch_discrimination=option), FAMILIES["progan"],
                       lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))

    first = trainer("8,4")
    first.images_seen = 400
    first.save()
    for option in ("6,4", ""):
        _assert_refused_losing_nothing(trainer(option), tmp_path / "run", "--minibatch-discrimination", "another --out")


def test_a_resume_on_another_process_count_continues_the_global_stream_and_adas_controller(build):
    """A checkpoint of 4 processes that each read 300 images (global positions 0..1199) resumes on 1
    process at 1200; ADA's controller (not only the augment pipe) continues at the saved p."""
    first = build()
    first.ada.p = first.augment.p = 0.37
    first.consumed = 300
    path = first.save()
    state = load_state(path, clock=True)
    state["world_size"] = 4                          # as if 4 processes had saved it
    torch.save(state, path / "state.pt")
    resumed = build()
    assert resumed.try_resume() == path
    assert resumed.consumed == 1200                  # 4 * 300 / 1, by hand
    assert resumed.ada.p == pytest.approx(0.37) and resumed.augment.p == pytest.approx(0.37)


@pytest.mark.parametrize("saved_by", [1, 4])
def test_rank_rng_states_come_back_only_on_the_process_count_that_saved_them(build, capsys, saved_by):
    """On the same process count each rank's torch RNG and ADA sign sums continue bit for bit, silently.
    A checkpoint of 4 processes resumed on 1 still holds an rng-rank0.pt, but it belonged to a quarter of
    the stream: this process keeps its own RNG and sign sums and warns that the run is no longer
    bit-identical."""
    first = build()
    first._ada_signs += torch.tensor([5.0, 12.0], dtype=torch.float64)
    path = first.save()
    saved_rank = torch.load(path / "rng-rank0.pt", weights_only=True)
    state = load_state(path, clock=True)
    state["world_size"] = saved_by
    torch.save(state, path / "state.pt")
    resumed = build()
    torch.manual_seed(12345)                         # a stream the checkpoint does not hold
    ours, our_signs = torch.get_rng_state(), resumed._ada_signs.clone()
    assert not torch.equal(ours, saved_rank["torch_rng"]) and not torch.equal(our_signs, saved_rank["ada_signs"])
    capsys.readouterr()
    assert resumed.try_resume() == path
    out = capsys.readouterr().out
    if saved_by == 1:
        assert torch.equal(torch.get_rng_state(), saved_rank["torch_rng"])
        assert torch.equal(resumed._ada_signs, saved_rank["ada_signs"])
        assert "process count changed" not in out
    else:
        assert torch.equal(torch.get_rng_state(), ours) and torch.equal(resumed._ada_signs, our_signs)
        assert "warning: process count changed since the checkpoint; training continues but is no longer " \
               "bit-identical" in out


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keep_checkpoints_leaves_exactly_the_newest_keep_after_every_save(tmp_path, keep):
    """Six saves at 8, 16, ..., 48 images: after save i (1-based) the folder holds checkpoints
    max(1, i - keep + 1) .. i, that is min(i, keep) of them, the newest; a resume picks the last."""
    from progan.training.checkpoint import checkpoint_name, latest_checkpoint, list_checkpoints, save_checkpoint

    root = tmp_path / "checkpoints"
    for i in range(1, 7):
        save_checkpoint(root, images_seen=8 * i, state={"images_seen": 8 * i}, rank_state={}, rank=0,
                        barrier=lambda: None, keep=keep)
        expected = [checkpoint_name(8 * j) for j in range(max(1, i - keep + 1), i + 1)]
        assert len(expected) == min(i, keep)
        assert [p.name for p in list_checkpoints(root)] == expected
        assert sorted(p.name for p in root.iterdir()) == expected          # nothing else left behind
    assert latest_checkpoint(root).name == checkpoint_name(48)


def test_a_save_killed_midway_leaves_a_tmp_dir_that_the_resumed_runs_save_at_that_kimg_replaces(tmp_path):
    """A run killed inside a save leaves ``.tmp-ckpt-000000.016`` (here: a half-written state.pt and the
    RNG file of a second rank); the resumed run reaches 16 images again and must save there: the
    checkpoint holds only what this save wrote (rank 0's RNG, the new state), and no .tmp- dir is left."""
    from progan.training.checkpoint import checkpoint_name, list_checkpoints, save_checkpoint

    root = tmp_path / "checkpoints"
    leftover = root / f".tmp-{checkpoint_name(16)}"
    leftover.mkdir(parents=True)
    (leftover / "state.pt").write_bytes(b"cut short")
    (leftover / "rng-rank1.pt").write_bytes(b"from the killed run")
    final = save_checkpoint(root, images_seen=16, state={"images_seen": 16}, rank_state={"seed": 3}, rank=0,
                            barrier=lambda: None, keep=2)
    assert final == root / "ckpt-000000.016" and list_checkpoints(root) == [final]
    assert sorted(p.name for p in root.iterdir()) == ["ckpt-000000.016"]
    assert sorted(p.name for p in final.iterdir()) == ["rng-rank0.pt", "state.pt"]
    assert torch.load(final / "state.pt", weights_only=True) == {"images_seen": 16}
    assert torch.load(final / "rng-rank0.pt", weights_only=True) == {"seed": 3}


def test_the_logged_speed_counts_only_this_sessions_images_and_seconds(tmp_path, monkeypatch):
    """A fake clock that moves 100 s between building a trainer and its train() (start-up, loading) and
    1 s per 4-image step: every log record says 4 img/s, in the first session and in the one resumed at
    16 images (not the images since 0 kimg, nor the seconds since the trainer was built)."""
    import progan.training.reporting as reporting
    import progan.training.trainer as trainer_module

    clock = SimpleNamespace(now=1000.0)
    fake_time = SimpleNamespace(time=lambda: clock.now)
    monkeypatch.setattr(reporting, "time", fake_time)
    monkeypatch.setattr(trainer_module, "time", fake_time)
    data = make_image_folder(tmp_path / "data")

    def session(kimg: float) -> None:
        config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), kimg=kimg,
                             batch_size=4, workers=0, log_every=2, checkpoint_kimg=10, sample_kimg=10)
        trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                          accelerator=Accelerator(cpu=True))
        step = trainer._train_step

        def one_second_step(*args, **kwargs):
            clock.now += 1.0
            return step(*args, **kwargs)
        trainer._train_step = one_second_step
        clock.now += 100.0
        trainer.train()

    session(0.016)
    session(0.032)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    records = [r for r in records if "img_per_s" in r]  # the monitor's records carry no speed
    assert [r["kimg"] for r in records] == [0.008, 0.016, 0.024, 0.032]
    assert [r["img_per_s"] for r in records] == [4.0] * 4
