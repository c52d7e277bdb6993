"""scripts/compare_recipes.py: every row is a command train.py accepts, named rows run in the order
given, and the sample sheet keeps a finished run's committed last grid when samples/ is gone."""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def recipes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("compare_recipes", ROOT / "scripts" / "compare_recipes.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "compare_recipes", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    return module


def test_every_row_is_accepted_by_train_py_and_names_are_unique(recipes):
    names = [row.name for row in recipes.ROWS]
    assert len(names) == len(set(names))
    for row in recipes.ROWS:
        assert recipes.available(row) == "", row.name
        args = recipes.row_args(row, 0)
        assert args[args.index("--family") + 1] == row.family
        for flag in row.flags:
            assert f"--{flag}" in args, (row.name, flag)


def test_named_rows_run_in_the_order_given(recipes, monkeypatch):
    ran = []
    monkeypatch.setattr(recipes, "available", lambda row: "")
    monkeypatch.setattr(recipes, "train_and_score", lambda row, seed: ran.append(f"{row.name}-s{seed}") or "ok")
    # sg-ns-r1 has two seeds; given last, both its seeds come after the two single-seed rows
    assert recipes.command_run(["pg-wgan", "sg-hinge-sn", "sg-ns-r1"], jobs=1) == 0
    assert ran == ["pg-wgan-s0", "sg-hinge-sn-s0", "sg-ns-r1-s0", "sg-ns-r1-s1"]


def test_unnamed_run_takes_every_first_seed_before_any_second(recipes, monkeypatch):
    ran = []
    monkeypatch.setattr(recipes, "available", lambda row: "")
    monkeypatch.setattr(recipes, "train_and_score", lambda row, seed: ran.append(seed) or "ok")
    assert recipes.command_run([], jobs=1) == 0
    assert ran == sorted(ran) and ran.count(0) == len(recipes.ROWS) and 1 in ran


def test_run_resumes_partial_runs_and_starts_new_ones_but_leaves_finished_ones(recipes, monkeypatch):
    """``run`` "trains and scores the rows not done yet (resumes partial runs)": a run folder with a training
    log and no final.json (interrupted) is queued again, as is a seed with no folder; a run whose final.json
    records a status (ok, diverged) is not. Folder states written by hand, the order as named."""
    ran = []
    monkeypatch.setattr(recipes, "available", lambda row: "")
    monkeypatch.setattr(recipes, "train_and_score", lambda row, seed: ran.append(f"{row.name}-s{seed}") or "ok")
    runs = recipes.RUNS
    (runs / "pg-wgan-s0").mkdir(parents=True)
    (runs / "pg-wgan-s0" / "log.jsonl").write_text('{"kimg": 1.0}\n')                  # interrupted
    (runs / "sg-hinge-sn-s0").mkdir()
    (runs / "sg-hinge-sn-s0" / "log.jsonl").write_text('{"kimg": 1.0}\n')
    (runs / "sg-hinge-sn-s0" / "final.json").write_text('{"status": "ok"}')            # finished
    (runs / "sg-ns-r1-s0").mkdir()
    (runs / "sg-ns-r1-s0" / "final.json").write_text('{"status": "diverged"}')        # finished, badly
    assert recipes.command_run(["pg-wgan", "sg-hinge-sn", "sg-ns-r1"], jobs=1) == 0    # sg-ns-r1-s1: never started
    assert ran == ["pg-wgan-s0", "sg-ns-r1-s1"]


def test_unknown_row_is_refused(recipes, capsys):
    assert recipes.command_run(["no-such-row"], jobs=1) == 2
    assert "no-such-row" in capsys.readouterr().err


def _finished_run(recipes, name: str, colour: tuple[int, int, int], *, samples: bool) -> dict:
    row = next(r for r in recipes.ROWS if r.name == name)
    out = recipes.run_dir(row, 0)
    out.mkdir(parents=True)
    grid = Image.new("RGB", (8, 8), colour)
    if samples:
        (out / "samples").mkdir()
        grid.save(out / "samples" / "grid-00160.000kimg.png")
    else:
        grid.save(out / "last-grid.png")
    (out / "log.jsonl").write_text(json.dumps({"kimg": 160.0, "resolution": 32, "diversity": 1.0}) + "\n")
    return {"row": name, "seed": 0, "status": "ok", "kimg": 160.0}


def test_sample_sheet_falls_back_to_the_committed_last_grid(recipes, tmp_path):
    results = [_finished_run(recipes, "sg-wgan", (255, 0, 0), samples=True),
               _finished_run(recipes, "pg-wgan", (0, 0, 255), samples=False)]
    sheet_path = tmp_path / "sheet.png"
    recipes.sample_sheet(results, sheet_path)
    # two 8 px tiles shown 2x (16 px) with an 8 px pad and a 16 px label: one row of two columns, not four
    assert Image.open(sheet_path).size == (2 * (16 + 8), 16 + 16 + 8)
    colours = {c for _, c in Image.open(sheet_path).convert("RGB").getcolors(1 << 16)}
    assert (255, 0, 0) in colours and (0, 0, 255) in colours  # both tiles, one from each source
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    # each tile below its 16 px label, column c starting at c * (16 + 8): red at x 0-15, blue at x 24-39
    assert (sheet[16:32, 0:16] == (255, 0, 0)).all() and (sheet[16:32, 24:40] == (0, 0, 255)).all()
    assert (sheet[16:, 16:24] == 255).all()                   # the white pad between them


@pytest.mark.parametrize("tail, verdict", [((0.9, 1.0, 1.1), "ok"), ((0.5, 0.6, 0.7), "collapsed"),
                                           ((0.75, 0.75, 0.75), "ok")])  # exactly 0.75 is not below it
def test_the_verdict_is_the_mean_diversity_of_the_last_three_monitor_records(recipes, monkeypatch, tail, verdict):
    """Six monitor records (and a loss record between them): the run is judged on the mean of the last
    three, 1.0 or 0.75 (ok) or 0.6 (collapsed, below 0.75), whatever the first three were (here the opposite)."""
    row = next(r for r in recipes.ROWS if r.name == "sg-wgan")
    out = recipes.run_dir(row, 0)
    head = (0.2, 0.3, 0.4) if verdict == "ok" else (1.2, 1.3, 1.4)
    scores = {"fid": 50.0, "kid": 0.04, "precision": 0.5, "recall": 0.25}

    def spawn(cmd, log):
        log.write_text("")
        if "evaluate.py" in cmd:
            (out / "score.json").write_text(json.dumps(scores))
        else:
            records = [{"kimg": 10.0 * i, "resolution": 32, "diversity": d} for i, d in enumerate(head + tail)]
            records.insert(4, {"kimg": 35.0, "resolution": 32, "g_loss": 1.0})
            (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return 0

    monkeypatch.setattr(recipes, "_spawn", spawn)
    began = time.time()
    assert recipes.train_and_score(row, 0) == verdict
    took = time.time() - began
    final = json.loads((out / "final.json").read_text())
    assert 0 <= final["wall_seconds_this_session"] <= round(took) + 1   # the session's seconds, not a clock reading
    assert final["status"] == verdict and final["diversity"] == pytest.approx(sum(tail) / 3)
    assert {k: final[k] for k in scores} == scores


def test_the_32px_throughput_is_the_median_of_stable_32px_records_only(recipes):
    row = next(r for r in recipes.ROWS if r.name == "sg-wgan")
    out = recipes.run_dir(row, 0)
    out.mkdir(parents=True)
    records = [{"kimg": 90.0, "resolution": 16, "alpha": 1.0, "img_per_s": 500.0},
               {"kimg": 110.0, "resolution": 32, "alpha": 0.5, "img_per_s": 1.0},    # fade-in: not counted
               {"kimg": 111.0, "resolution": 32, "alpha": 0.75, "img_per_s": 2.0},
               *({"kimg": 120.0 + i, "resolution": 32, "alpha": 1.0, "img_per_s": v} for i, v in enumerate((30.0, 10.0, 20.0)))]
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert recipes.summarize(row, 0)["img_per_s_32px"] == 20.0


def test_the_lowest_32px_diversity_is_the_minimum_over_32px_monitor_records_only(recipes):
    """``min_diversity_32px``: the smallest diversity logged at 32 px (0.4 here), not the largest (0.9) and
    not the 16 px record's 0.1."""
    row = next(r for r in recipes.ROWS if r.name == "sg-wgan")
    out = recipes.run_dir(row, 0)
    out.mkdir(parents=True)
    records = [{"kimg": 50.0, "resolution": 16, "diversity": 0.1},
               *({"kimg": 100.0 + i, "resolution": 32, "diversity": d} for i, d in enumerate((0.9, 0.4, 0.8)))]
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert recipes.summarize(row, 0)["min_diversity_32px"] == 0.4


def test_a_spawned_step_logs_its_errors_beside_its_output_and_returns_its_exit_code(recipes, tmp_path):
    """A failed train.py or evaluate.py is diagnosed from its log (the summary says "see evaluate.out"):
    the child's stderr goes into the same file as its stdout, appended, and its exit code comes back."""
    log = tmp_path / "step.out"
    log.write_text("earlier\n")
    code = recipes._spawn([sys.executable, "-c", "import sys; print('to stdout'); sys.exit('to stderr')"], log)
    assert code == 1
    assert log.read_text().splitlines() == ["earlier", "to stdout", "to stderr"]
