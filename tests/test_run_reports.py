"""``training.reporting.RunReports`` on a stub trainer: what reaches the sample grid (the phase's stage and
fade-in alpha, the kimg in the file name, labels with --cond), what a log record says (each term the
mean over the steps on which it ran in the interval, a lazy term over its own steps) and when an
evaluation replaces best/ (a full-resolution FID below every earlier one)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from progan.training import reporting
from progan.training.reporting import RunReports
from progan.training.schedule import Phase


class _Accelerator:
    is_main_process = True
    device = torch.device("cpu")
    num_processes = 1

    def __init__(self):
        self.logged = []

    def reduce(self, tensor, reduction):
        assert reduction == "mean"
        return tensor

    def log(self, values, step):
        self.logged.append((step, values))

    def print(self, *args, **kwargs):
        pass


class _Stub(RunReports):
    def __init__(self, **fields):
        self.__dict__.update(fields)


def _stub(tmp_path, **fields):
    return _Stub(accelerator=_Accelerator(), out=tmp_path, images_seen=1500, step=7, augment=None,
                           _signals={}, _term_sums={}, _log_since=(0.0, 0), _stop_requested=False,
                           clock=SimpleNamespace(read=lambda: (1.0, 2.0)), **fields)


@pytest.mark.parametrize("cond", [False, True])
def test_sample_grid_gets_the_phase_alpha_and_the_exact_kimg(tmp_path, monkeypatch, cond):
    calls = []
    monkeypatch.setattr(reporting, "save_sample_grid", lambda *args, **kwargs: calls.append((args, kwargs)))
    z = torch.randn(6, 4)
    stub = _stub(tmp_path, config=SimpleNamespace(cond=cond), sample_z=z, generator_ema="G",
                 model_config=SimpleNamespace(num_classes=3 if cond else 0, resolution=32))
    stub._samples( Phase(stage=2, alpha=0.25, batch_size=4))
    (args, kwargs), = calls
    assert args[0] == "G" and args[1] is z
    assert args[2] == tmp_path / "samples" / "grid-00001.500kimg.png"   # 1500 images = 1.5 kimg, not 1
    assert kwargs["stage"] == 2 and kwargs["alpha"] == 0.25 and kwargs["full_resolution"] == 32
    if cond:
        assert kwargs["labels"] is not None and sorted(set(kwargs["labels"].tolist())) == [0, 1, 2]
    else:
        assert kwargs["labels"] is None


def test_a_log_record_holds_each_terms_mean_over_the_steps_it_ran(tmp_path):
    """Three steps: d_loss 1, 2, 6 (mean 3), g_loss 4 each time, a lazy r1 on one step only (5): the record
    says 3, 4 and 5, not the sums (9, 12) nor r1 divided by three steps."""
    stub = _stub(tmp_path)
    for d, r1 in ((1.0, None), (2.0, 5.0), (6.0, None)):
        terms = {"d_loss": torch.tensor(d), "g_loss": torch.tensor(4.0)}
        if r1 is not None:
            terms["r1"] = torch.tensor(r1)
        stub._accumulate_terms( terms)
    postfix = {}
    stub._log_terms( Phase(stage=1, alpha=0.375, batch_size=4),
                          SimpleNamespace(set_postfix=postfix.update))
    record, = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record["d_loss"] == pytest.approx(3.0) and record["g_loss"] == pytest.approx(4.0)
    assert record["r1"] == pytest.approx(5.0)
    assert (record["kimg"], record["step"], record["stage"], record["resolution"], record["alpha"]) == \
        (1.5, 7, 1, 8, 0.375)
    assert postfix["d"] == "3.000" and postfix["res"] == 8
    assert stub._term_sums == {}  # the next interval starts from zero


def test_a_log_records_speed_is_its_images_over_its_seconds(tmp_path, monkeypatch):
    """img_per_s is the interval's images over the interval's seconds: 1000 images (500 -> 1500) in 4 s
    (the last record at t = 100, this one at t = 104) is 250, and the next interval starts there."""
    monkeypatch.setattr(reporting, "time", SimpleNamespace(time=lambda: 104.0))
    stub = _stub(tmp_path)
    stub._log_since = (100.0, 500)
    stub._accumulate_terms({"d_loss": torch.tensor(1.0), "g_loss": torch.tensor(2.0)})
    stub._log_terms(Phase(stage=1, alpha=1.0, batch_size=4), SimpleNamespace(set_postfix=lambda *_, **__: None))
    record, = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record["img_per_s"] == 250.0 and stub._log_since == (104.0, 1500)


def test_best_is_saved_only_for_an_fid_below_every_earlier_full_resolution_one(tmp_path):
    """Full-resolution evaluations with FIDs 4, 6, 2, 3, 2 at 100, 200, ... images: best/ is written at
    the first (4 < inf) and the third (2 < 4) only, and best_fid after each is the running minimum
    4, 4, 2, 2, 2; a worse or equal FID writes nothing (it would replace the better model)."""
    fids, seen, saved = [4.0, 6.0, 2.0, 3.0, 2.0], [], []

    def evaluator(generator, dataset, **kwargs):
        return {"fid": fids[len(seen)]}

    evaluator.num = 12
    stub = _stub(tmp_path, best_fid=float("inf"), model_config=SimpleNamespace(resolution=16), evaluator=evaluator,
                 _dataset=lambda resolution: "reals", summary=lambda seconds: {"kimg": stub.images_seen / 1000},
                 generator_ema=SimpleNamespace(save_pretrained=lambda path, *, summary: saved.append((path, summary))))
    for i, fid in enumerate(fids, 1):
        stub.images_seen = 100 * i
        stub._evaluate(Phase(stage=2, alpha=1.0, batch_size=4), 1.0)
        seen.append(fid)
        assert stub.best_fid == min(seen)
    assert saved == [(tmp_path / "best", {"kimg": 0.1, "fid": 4.0, "fid_num": 12}),
                     (tmp_path / "best", {"kimg": 0.3, "fid": 2.0, "fid_num": 12})]
