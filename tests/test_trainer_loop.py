"""When the training loop writes and stops (``progan/training/trainer.py``), each checked against steps
counted by hand: log records every --log-every steps and at the last; checkpoints, sample grids and
evaluations on the step that crosses their interval (also one the batch does not divide) and at the end;
stop requests agreed on every --sync-every steps and before anything is written (a non-finite loss never
reaches a checkpoint); evaluations during a fade-in at the alpha being trained; a signal caught before
the trainer, and a second Ctrl-C."""
from __future__ import annotations

import pytest

from families import FAMILIES
from train_utils import make_image_folder


def _trainer(tmp_path, family: str = "progan", **options):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family=family, preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, **options)
    return Trainer(config, FAMILIES[family], lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))


# --- log records ---------------------------------------------------------------------------------------

def test_log_records_follow_log_every_and_the_last_step(tmp_path, restore_signals, monkeypatch):
    """--log-every 3 over 7 steps (0.028 kimg of 4 images): one record after steps 3 and 6 (counted after
    the step) and one after the last, 7; each at the images seen by then."""
    import json
    import time

    from progan.training import trainer as trainer_module

    bars = []

    class RecordingBar(trainer_module.tqdm):
        def close(self):
            bars.append(self.n)
            super().close()

    monkeypatch.setattr(trainer_module, "tqdm", RecordingBar)
    trainer = _trainer(tmp_path, kimg=0.028, log_every=3, progressive=False, checkpoint_kimg=1.0, sample_kimg=1.0)
    begin = time.time()
    trainer.train()
    wall = time.time() - begin
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "g_loss" in r]
    assert [(r["step"], round(r["kimg"] * 1000)) for r in steps] == [(3, 12), (6, 24), (7, 28)]
    # the export's summary (the model card's) records the run's own duration, within the wall time around it
    summary = json.loads((tmp_path / "run" / "export" / "config.json").read_text())["summary"]
    assert 0 <= summary["train_seconds"] <= wall + 0.1 and summary["steps"] == 7
    assert bars[0] == pytest.approx(0.028)  # the progress bar ends at the kimg reached


# --- what is written when: intervals that the batch does not divide, and the end of the run -------------

def test_checkpoints_and_grids_fall_on_the_step_that_crosses_each_interval_and_at_the_end(tmp_path, restore_signals):
    """4 images a step to --kimg 0.028 (7 steps). --checkpoint-kimg 0.01: the steps ending at 12 and 20
    images cross 10 and 20, and 28 is the end (no crossing); --sample-kimg 0.012: the grid before the
    first step, the steps crossing 12 and 24 (at 12 and 24) and the end (28)."""
    from progan.training.checkpoint import list_checkpoints

    _trainer(tmp_path, kimg=0.028, checkpoint_kimg=0.01, sample_kimg=0.012, keep_checkpoints=10,
             progressive=False, log_every=100).train()
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["ckpt-000000.012", "ckpt-000000.020", "ckpt-000000.028"]
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").glob("grid-*.png"))
    assert grids == [f"grid-{n / 1000:09.3f}kimg.png" for n in (0, 12, 24, 28)]


def test_an_interval_of_zero_is_never_crossed_and_a_step_onto_a_multiple_crosses_it():
    """``_crossed(before, kimg)``: a step from ``before`` to ``images_seen`` crosses the interval where
    floor(seen / (kimg * 1000)) changes; kimg 0 (the option turned off) is never crossed."""
    from types import SimpleNamespace

    from progan.training.trainer import Trainer

    at = SimpleNamespace(images_seen=1000)
    assert Trainer._crossed(at, 996, 0.0) is False
    assert Trainer._crossed(at, 996, 1.0) is True and Trainer._crossed(at, 1000, 1.0) is False
    assert Trainer._crossed(SimpleNamespace(images_seen=999), 995, 1.0) is False


def test_an_evaluation_is_due_where_its_interval_is_crossed_and_at_the_end(tmp_path, restore_signals):
    """--eval-kimg 0.012 to --kimg 0.02, 4 images a step: evaluated after 12 images (the crossing) and 20 (the end)."""
    seen = []

    class Recording:
        num = 12

        def load(self):
            pass

        def __call__(self, generator, dataset, *, stage, alpha, should_stop):
            seen.append(trainer.images_seen)
            return {"fid": 100.0 - len(seen)}

    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, kimg=0.02, eval_kimg=0.012, progressive=False,
                         checkpoint_kimg=1.0, sample_kimg=1.0)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True), evaluator=Recording())
    trainer.train()
    assert seen == [12, 20]


def test_evaluations_during_a_fade_in_score_g_ema_at_the_alpha_being_trained(tmp_path, restore_signals):
    """--stable-kimg 0.04 --fade-kimg 0.04 --eval-kimg 0.012 to --kimg 0.072, 4 images a step: evaluations
    after the steps that began at 8, 20, 32 (stage 0, alpha 1), then 44, 56, 68 images (stage 1 fading in:
    alpha = (images - 40) / 40 = 0.1, 0.4, 0.7). The real evaluator (stand-in features) calls G_ema with
    that stage and alpha on every batch, and the log records them."""
    import json

    from accelerate import Accelerator

    from data_prep import open_dataset
    from metric_utils import StandInFeatures
    from progan.metrics.evaluation import PeriodicEvaluator
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    calls: list[list[dict]] = []

    class Recording(PeriodicEvaluator):
        def __call__(self, generator, dataset, **options):
            calls.append([])
            hook = generator.register_forward_pre_hook(lambda module, args, kwargs: calls[-1].append(dict(kwargs)),
                                                       with_kwargs=True)
            try:
                return super().__call__(generator, dataset, **options)
            finally:
                hook.remove()

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, kimg=0.072, stable_kimg=0.04, fade_kimg=0.04, eval_kimg=0.012,
                         eval_num=6, checkpoint_kimg=1.0, sample_kimg=1.0)
    accelerator = Accelerator(cpu=True)
    evaluator = Recording(accelerator, num=6, data_label=str(data), network=StandInFeatures(),
                          cache_dir=tmp_path / "fid-stats", batch_size=4)
    Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r), accelerator=accelerator,
            evaluator=evaluator).train()
    expected = [(0, 1.0)] * 3 + [(1, (images - 40) / 40) for images in (44, 56, 68)]
    assert len(calls) == len(expected)
    for batches, (stage, alpha) in zip(calls, expected):
        assert len(batches) == 2 and {tuple(kwargs) for kwargs in batches} == {("stage", "alpha")}, batches
        assert all(kw["stage"] == stage and kw["alpha"] == pytest.approx(alpha, abs=1e-9) for kw in batches), batches
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [(r["resolution"], r["alpha"]) for r in records if "fid" in r]
    assert evals == [(4, 1.0)] * 3 + [(8, pytest.approx(alpha, abs=1e-4)) for _, alpha in expected[3:]]


def test_a_stop_signal_caught_before_the_trainer_ends_the_run_before_its_first_step(tmp_path, restore_signals):
    """train.py records SIGTERM from its first line (``pending_signals``): the trainer then trains no
    step and writes no checkpoint, and says to rerun the same command."""
    import signal

    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.checkpoint import list_checkpoints
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, kimg=0.02, progressive=False, checkpoint_kimg=0.004)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True), pending_signals=[signal.SIGTERM])
    assert trainer.train() == tmp_path / "run" / "checkpoints"
    assert (trainer.images_seen, trainer.step) == (0, 0)
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []
    assert not (tmp_path / "run" / "export").exists()


def test_stop_requests_are_kept_and_only_a_second_ctrl_c_aborts(tmp_path):
    """SIGTERM and SIGUSR1 (a scheduler may send both, or one twice) only request the stop that saves a
    checkpoint; Ctrl-C does too the first time, and a second Ctrl-C aborts at once (KeyboardInterrupt)."""
    import signal

    trainer = _trainer(tmp_path)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGTERM):
        try:
            trainer._request_stop(signum, None)
        except KeyboardInterrupt:  # would end the run without its checkpoint (and end pytest: catch it)
            pytest.fail(f"{signal.Signals(signum).name} after a stop request aborted the run")
        assert trainer._stop_requested
    with pytest.raises(KeyboardInterrupt):
        trainer._request_stop(signal.SIGINT, None)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGUSR1", "SIGINT"])
def test_each_stop_signal_sent_during_training_saves_a_checkpoint_and_ends_the_run(tmp_path, monkeypatch,
                                                                                   restore_signals, signame):
    """The signal itself, not the handler called by hand: train.py's first lines leave a recording handler
    for SIGTERM/SIGUSR1 (SLURM's --signal sends USR1); the trainer must replace it for all three. Sent to
    this process during step 2 with --sync-every 1: the run saves at 8 images and ends there (a signal the
    trainer left to the earlier handler would only be recorded, and the run would go on to the export)."""
    import signal

    import progan.training.iteration as iteration_module
    from progan.training.checkpoint import list_checkpoints

    signum = getattr(signal, signame)
    recorded: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):  # as train.py; never the default (kills pytest)
        signal.signal(sig, lambda s, _frame: recorded.append(s))
    trainer = _trainer(tmp_path, kimg=0.02, sync_every=1, log_every=100, checkpoint_kimg=1.0, sample_kimg=1.0,
                       progressive=False)
    real = iteration_module.train_iteration

    def signal_in_step_2(ctx, *args, step, **kwargs):
        if step == 1:  # the second step (step counts before it)
            signal.raise_signal(signum)
        return real(ctx, *args, step=step, **kwargs)

    monkeypatch.setattr(iteration_module, "train_iteration", signal_in_step_2)
    assert trainer.train() == tmp_path / "run" / "checkpoints"
    assert recorded == []
    assert (trainer.step, trainer.images_seen) == (2, 8)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["ckpt-000000.008"]
    assert not (tmp_path / "run" / "export").exists()


def test_a_stop_request_is_agreed_on_every_sync_every_steps(tmp_path, monkeypatch, restore_signals):
    """--sync-every 3 with --log-every 100 and nothing else due: a stop requested during step 2 is seen
    at the agreement after step 3, which saves a checkpoint at 12 images and ends the run there."""
    import progan.training.iteration as iteration_module
    from progan.training.checkpoint import list_checkpoints

    trainer = _trainer(tmp_path, kimg=0.04, sync_every=3, log_every=100, checkpoint_kimg=1.0, sample_kimg=1.0,
                       progressive=False)
    real = iteration_module.train_iteration

    def stop_in_step_2(ctx, *args, step, **kwargs):
        trainer._stop_requested = trainer._stop_requested or step == 1  # the second step (step counts before it)
        return real(ctx, *args, step=step, **kwargs)

    monkeypatch.setattr(iteration_module, "train_iteration", stop_in_step_2)
    assert trainer.train() == tmp_path / "run" / "checkpoints"
    assert (trainer.step, trainer.images_seen) == (3, 12)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["ckpt-000000.012"]


def test_a_non_finite_loss_is_agreed_on_before_a_checkpoint_that_no_sync_step_precedes(tmp_path, monkeypatch,
                                                                                       restore_signals):
    """--sync-every 100 (no periodic agreement in the run), --checkpoint-kimg 0.012: G's loss is NaN from
    the third step on, so the checkpoint due after step 3 (12 images) must first agree, find the NaN and
    stop the run, naming the first bad step (8 images); nothing is saved."""
    import progan.training.step as step_module
    from progan.training.checkpoint import list_checkpoints
    from progan.training.trainer import TrainingDiverged

    calls, real = {"n": 0}, step_module.generator_loss

    def poisoned(name, scores):
        calls["n"] += 1
        return real(name, scores) * (float("nan") if calls["n"] > 2 else 1.0)

    monkeypatch.setattr(step_module, "generator_loss", poisoned)
    trainer = _trainer(tmp_path, kimg=0.02, sync_every=100, log_every=100, checkpoint_kimg=0.012, sample_kimg=1.0,
                       progressive=False)
    with pytest.raises(TrainingDiverged, match="non-finite loss at 0.008 kimg"):
        trainer.train()
    assert trainer.images_seen == 12
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []


# --- the export at --kimg -------------------------------------------------------------------------------

def test_the_export_at_kimg_holds_the_ema_generator_not_the_training_one(tmp_path, restore_signals):
    """--kimg reached: OUT/export holds G_ema's weights, tensor for tensor, and not G's. Two steps of Adam
    make G and G_ema differ (EMA keeps part of the start), which the test checks before comparing."""
    import torch

    from progan.hub.export import read_pretrained

    trainer = _trainer(tmp_path, kimg=0.008, progressive=False, checkpoint_kimg=1.0, sample_kimg=1.0, log_every=100)
    export = trainer.train()
    _, tensors = read_pretrained(export)
    ema, raw = trainer.generator_ema.state_dict(), trainer.generator.state_dict()
    assert set(tensors) == set(ema)
    assert any(not torch.equal(ema[k], raw[k]) for k in ema if ema[k].is_floating_point()), "G == G_ema: no test"
    for key, value in tensors.items():
        assert torch.equal(value, ema[key].cpu()), key
