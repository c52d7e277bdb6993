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


# --- what no fast test ran before (issue 17 coverage): refusals, failed steps, stopping, the table ---

def test_a_row_train_py_refuses_is_reported_with_the_refusal(recipes):
    """``available`` gives the reason a row cannot run today: argparse's own last line for a flag train.py
    does not have, the option check's message for a value it refuses (monitor-num 1: it must be 0 or >= 2)."""
    unknown = recipes.available(recipes.Row("x", "progan", {"no-such-flag": 1}))
    assert unknown.endswith("error: unrecognized arguments: --no-such-flag 1")
    refused = recipes.available(recipes.Row("x", "progan", {"monitor-num": 1}))
    assert refused == "--monitor-num must be 0 (off) or >= 2, got 1"


def test_an_unavailable_row_is_skipped_with_its_reason_and_the_others_run(recipes, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(recipes, "available", lambda row: "needs --foo" if row.name == "pg-wgan" else "")
    monkeypatch.setattr(recipes, "train_and_score", lambda row, seed: ran.append(f"{row.name}-s{seed}") or "ok")
    assert recipes.command_run(["pg-wgan", "sg-hinge-sn"], jobs=1) == 0
    assert ran == ["sg-hinge-sn-s0"]
    assert "skip pg-wgan: not available yet (needs --foo)" in capsys.readouterr().out


def _row(recipes, name):
    return next(r for r in recipes.ROWS if r.name == name)


def test_list_shows_each_runs_state_from_its_files(recipes, capsys):
    """``list``: a run with final.json shows the status recorded there (diverged, collapsed), one with only a
    log is partial, one with nothing is todo; each row is followed by the train.py command it runs."""
    states = {("sg-ns-r1", 0): "diverged", ("sg-ns-r1", 1): None, ("sg-wgan", 0): "collapsed"}
    for (name, seed), state in states.items():
        out = recipes.run_dir(_row(recipes, name), seed)
        out.mkdir(parents=True)
        (out / "log.jsonl").write_text(json.dumps({"kimg": 1.0}) + "\n")
        if state:
            (out / "final.json").write_text(json.dumps({"status": state}))
    assert recipes.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_row = {line.split()[0]: line for line in lines if not line.startswith(" ")}
    assert set(by_row) == {r.name for r in recipes.ROWS}
    assert "s0: diverged, s1: partial" in by_row["sg-ns-r1"]
    assert "s0: collapsed, s1: todo" in by_row["sg-wgan"]
    assert "s0: todo" in by_row["pg-wgan"] and "unavailable" not in by_row["pg-wgan"]
    commands = [line.strip() for line in lines if line.startswith(" ")]
    assert len(commands) == len(recipes.ROWS) and all(c.startswith("python train.py --preset recipe-32") for c in commands)


def _spawn_stand_in(recipes, out, *, train_code=0, train_text="", eval_code=0, stop_after=None, calls=None):
    def spawn(cmd, log):
        (calls if calls is not None else []).append(cmd[1])
        log.write_text(train_text if cmd[1] == "train.py" else "")
        if stop_after == cmd[1]:
            recipes._STOP.set()
        if cmd[1] == "evaluate.py":
            (out / "score.json").write_text(json.dumps({"fid": 1.0, "kid": 0.0, "precision": 1.0, "recall": 1.0}))
            return eval_code
        (out / "log.jsonl").write_text(json.dumps({"kimg": 160.0, "resolution": 32, "diversity": 1.0}) + "\n")
        return train_code
    return spawn


def test_a_run_that_stopped_on_a_non_finite_loss_is_recorded_as_diverged(recipes, monkeypatch):
    """train.py exiting non-zero with "non-finite" in its output: final.json says diverged, with the output's
    last line as the error, and no scoring is attempted (a diverged run is finished: ``list`` shows it so)."""
    row = _row(recipes, "sg-wgan")
    out = recipes.run_dir(row, 0)
    calls = []
    text = "step 100\nRuntimeError: non-finite loss at kimg 12.5 (d_loss nan)\n"
    monkeypatch.setattr(recipes, "_spawn", _spawn_stand_in(recipes, out, train_code=1, train_text=text, calls=calls))
    assert recipes.train_and_score(row, 0) == "diverged"
    assert calls == ["train.py"]
    assert json.loads((out / "final.json").read_text()) == {
        "status": "diverged", "error": "RuntimeError: non-finite loss at kimg 12.5 (d_loss nan)"}
    assert recipes.status(row, 0) == "diverged"


def test_a_run_that_failed_otherwise_is_reported_and_left_to_be_retried(recipes, monkeypatch):
    """Any other non-zero exit is a failure with the exit code and the log to read, and writes no final.json,
    so the run stays partial (the next ``run`` retries it) instead of counting as finished."""
    row = _row(recipes, "sg-wgan")
    out = recipes.run_dir(row, 0)
    calls = []
    monkeypatch.setattr(recipes, "_spawn", _spawn_stand_in(recipes, out, train_code=3, train_text="Killed\n", calls=calls))
    assert recipes.train_and_score(row, 0) == f"failed (exit 3; see {out / 'train.out'})"
    assert calls == ["train.py"] and not (out / "final.json").exists()
    assert recipes.status(row, 0) == "partial"


def test_a_failed_scoring_is_reported_and_the_run_not_finished(recipes, monkeypatch):
    row = _row(recipes, "sg-wgan")
    out = recipes.run_dir(row, 0)
    monkeypatch.setattr(recipes, "_spawn", _spawn_stand_in(recipes, out, eval_code=1))
    assert recipes.train_and_score(row, 0) == f"scoring failed (see {out / 'evaluate.out'})"
    assert not (out / "final.json").exists() and recipes.status(row, 0) == "partial"


@pytest.mark.parametrize("step", ["train.py", "evaluate.py"])
def test_a_run_stopped_by_a_signal_is_neither_scored_nor_finished(recipes, monkeypatch, step):
    """SIGTERM during training (train.py saves a checkpoint and exits 0) or during scoring: "stopped", no
    scoring after a stopped training, and no final.json, so the next ``run`` resumes it."""
    row = _row(recipes, "sg-wgan")
    out = recipes.run_dir(row, 0)
    calls = []
    monkeypatch.setattr(recipes, "_spawn", _spawn_stand_in(recipes, out, stop_after=step, calls=calls))
    assert recipes.train_and_score(row, 0) == "stopped"
    assert calls == ["train.py"] if step == "train.py" else calls == ["train.py", "evaluate.py"]
    assert not (out / "final.json").exists()


def test_a_finished_run_keeps_its_newest_sample_grid_as_last_grid(recipes, monkeypatch):
    """samples/ is not committed: the grid of the highest kimg (not the first found) is copied to
    last-grid.png for the sample sheet."""
    row = _row(recipes, "sg-wgan")
    out = recipes.run_dir(row, 0)
    (out / "samples").mkdir(parents=True)
    for kimg, colour in ((10.0, (255, 0, 0)), (160.0, (0, 255, 0)), (90.0, (0, 0, 255))):
        Image.new("RGB", (4, 4), colour).save(out / "samples" / f"grid-{kimg:09.3f}kimg.png")
    monkeypatch.setattr(recipes, "_spawn", _spawn_stand_in(recipes, out))
    assert recipes.train_and_score(row, 0) == "ok"
    assert Image.open(out / "last-grid.png").convert("RGB").getpixel((0, 0)) == (0, 255, 0)


def test_a_signal_stops_the_queue_and_passes_sigterm_to_the_running_children(recipes, monkeypatch):
    """``run`` handles SIGTERM/SIGINT/SIGUSR1: each running train.py gets SIGTERM (it checkpoints and exits)
    and no queued run starts after it."""
    import signal

    handlers = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: handlers.__setitem__(sig, handler))

    class Child:
        signals = []

        def send_signal(self, sig):
            self.signals.append(sig)

    ran = []

    def train_and_score(row, seed):
        ran.append(row.name)
        recipes._CHILDREN.append(Child())
        handlers[signal.SIGUSR1](signal.SIGUSR1, None)   # what the OS would call
        return "stopped"

    monkeypatch.setattr(recipes, "available", lambda row: "")
    monkeypatch.setattr(recipes, "train_and_score", train_and_score)
    assert recipes.command_run(["pg-wgan", "sg-hinge-sn"], jobs=1) == 0
    assert set(handlers) == {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    assert ran == ["pg-wgan"] and Child.signals == [signal.SIGTERM]


def _write_run(recipes, name, seed, records, final=None):
    out = recipes.run_dir(_row(recipes, name), seed)
    out.mkdir(parents=True)
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if final is not None:
        (out / "final.json").write_text(json.dumps(final))
    return out


def test_the_table_lists_the_runs_that_exist_with_their_numbers_rounded(recipes, monkeypatch, tmp_path, capsys):
    """``table``: one line per run that has a log (rows never run are left out), numbers to 4 significant
    digits for FID, 2 for the rest, "-" for what was not measured; a run recorded ok whose diversity is
    below today's threshold is shown collapsed (re-judged); table.json holds the same runs; curves.png and
    samples.png are written."""
    monkeypatch.setattr(recipes, "DOCS", tmp_path / "docs")
    _write_run(recipes, "sg-wgan", 0,
               [{"kimg": 100.0, "resolution": 32, "diversity": 0.9, "r_v": 0.123},
                {"kimg": 120.0, "resolution": 32, "alpha": 1.0, "img_per_s": 41.5, "fid": 80.0},
                {"kimg": 160.0, "resolution": 32, "diversity": 0.7, "r_v": 0.456}],
               {"status": "ok", "diversity": 0.7, "fid": 12.3456, "kid": 0.012345, "precision": 0.5, "recall": 0.25})
    _write_run(recipes, "pg-wgan", 0, [{"kimg": 30.25, "resolution": 8, "g_loss": 1.0}])
    grids = recipes.run_dir(_row(recipes, "pg-wgan"), 0) / "samples"
    grids.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(grids / "grid-00030.000kimg.png")
    assert recipes.main(["table"]) == 0
    lines = (tmp_path / "docs" / "table.md").read_text().splitlines()
    assert lines[2:] == [
        "| sg-wgan | 0 | WGAN-GP, no augmentation (the campaign's recipe) | 160 | collapsed | 12.35 | 0.012 | 0.5 "
        "| 0.25 | 0.7 / 0.7 | 0.46 | 41.5 |",
        "| pg-wgan | 0 | ProGAN, WGAN-GP (its paper recipe) | 30 | unfinished | - | - | - | - | - / - | - | - |"]
    assert capsys.readouterr().out.splitlines()[2:] == lines[2:]
    table = json.loads((tmp_path / "docs" / "table.json").read_text())
    assert [(r["row"], r["status"]) for r in table] == [("sg-wgan", "collapsed"), ("pg-wgan", "unfinished")]
    assert table[0]["evals"] == [{"kimg": 120.0, "resolution": 32, "fid": 80.0}]
    # 14 x 5.5 inches at 110 dpi
    assert Image.open(tmp_path / "docs" / "curves.png").size == (1540, 605)
    assert Image.open(tmp_path / "docs" / "samples.png").size == (16 + 8, 16 + 16 + 8)   # one 8 px tile at 2x


def test_the_table_is_written_without_matplotlib(recipes, monkeypatch, tmp_path, capsys):
    """matplotlib is an optional extra: without it the table and its JSON are still written, with a hint."""
    monkeypatch.setattr(recipes, "DOCS", tmp_path / "docs")
    _write_run(recipes, "sg-wgan", 0, [{"kimg": 10.0, "resolution": 4, "diversity": 3.0}])

    def no_matplotlib(results, path):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(recipes, "plot", no_matplotlib)
    assert recipes.command_table() == 0
    assert "pip install -e '.[docs]'" in capsys.readouterr().err
    assert (tmp_path / "docs" / "table.md").exists() and not (tmp_path / "docs" / "curves.png").exists()
    assert not (tmp_path / "docs" / "samples.png").exists()   # no grid anywhere: no empty sheet


def test_run_refuses_fewer_than_one_job_and_passes_rows_and_jobs_on(recipes, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(recipes, "command_run", lambda rows, jobs: calls.append((rows, jobs)) or 0)
    assert recipes.main(["run", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err and calls == []
    assert recipes.main(["run", "sg-wgan", "pg-wgan", "--jobs", "3"]) == 0
    assert recipes.main(["run"]) == 0
    assert calls == [(["sg-wgan", "pg-wgan"], 3), ([], 2)]


def test_the_script_run_as_a_command_exits_with_mains_code(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["compare_recipes.py", "run", "--jobs", "0"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "scripts" / "compare_recipes.py"), run_name="__main__")
    assert exit_.value.code == 2 and "--jobs must be >= 1" in capsys.readouterr().err
