"""evaluate.py's argument bounds, each at its exact value (checked before any model is loaded).

A value at a bound passes its check and the run stops at the next one (an invalid ``--metrics`` or
``--background`` given on purpose); one just outside is that bound's own one-line error. Precision/recall
use 3 nearest neighbours besides the image itself, so with ``pr`` each side needs 4 images: fewer used to
generate everything, then end in a ValueError traceback from the metric. Then where ``--out`` puts the JSON,
the real-statistics cache a second run reads, what a process other than the main one of a launch writes, and
``python evaluate.py``'s exit status."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from metric_utils import CountingFeatures, StandInFeatures  # noqa: E402
from train_utils import ROOT, make_image_folder  # noqa: E402


def _error(capsys, argv):
    assert evaluate.main(["--weights", "unused", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("inside, outside, refusal", [
    (["--num", "2"], ["--num", "1"], "--num must be >= 2"),
    (["--batch", "1"], ["--batch", "0"], "--batch >= 1"),
    (["--nearest", "--pairs", "1"], ["--nearest", "--pairs", "0"], "--pairs must be >= 1"),
])
def test_count_bounds_are_inclusive(capsys, inside, outside, refusal):
    assert "--metrics must be" in _error(capsys, [*inside, "--metrics", "bogus"])
    assert refusal in _error(capsys, [*outside, "--metrics", "bogus"])


@pytest.mark.parametrize("inside, outside", [("0,0,0", "-1,0,0"), ("255,255,255", "255,256,255"),
                                             ("0,128,255", "0,128,256"), ("255,0,0", "255,0,-1")])
def test_background_bounds_0_and_255_are_inclusive(capsys, inside, outside):
    """Each component 0..255: black, white and a mix of both bounds pass and the run stops at the next check
    (remote --weights without --allow-remote-weights, so nothing is downloaded); -1 or 256 in any place is
    the --background error line."""
    remote = ["--weights", "https://example.invalid/model"]
    assert "--weights is remote" in _error(capsys, [*remote, f"--background={inside}"])
    assert "--background must be R,G,B with values 0..255" in _error(capsys, [*remote, f"--background={outside}"])


@pytest.mark.parametrize("argv, refused", [
    (["--num", "3"], True), (["--num", "4"], False), (["--num", "3", "--metrics", "fid,kid"], False),
    (["--num-real", "3"], True), (["--num-real", "4"], False), (["--num-real", "3", "--metrics", "fid,kid"], False),
])
def test_precision_recall_needs_four_images_per_side(capsys, argv, refused):
    error = _error(capsys, [*argv, "--background", "bad"])
    assert ("--metrics pr needs --num and --num-real >= 4" in error) == refused, error
    assert ("--background must be" in error) == (not refused), error


def test_precision_recall_on_a_three_image_dataset_is_refused_before_generating(weights, tmp_path, monkeypatch,
                                                                               capsys):
    """Precision/recall use k = 3 nearest neighbours, so they need at least 4 reals: a dataset of 3 images is
    refused with ``pr`` (the default metrics, alone or with fid) in one line naming the count and the way out,
    before anything is generated and with no --out written; ``--metrics fid,kid`` on it goes ahead."""
    import data_prep
    import progan.metrics.evaluation
    import progan.metrics.inception

    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(source / f"{i}.png")
    data = data_prep.prepare(source, tmp_path / "data", resolution=16, workers=1, progress=False)
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: pytest.fail("generated despite too few real images"))
    args = ["--weights", str(weights["progan"]), "--data", str(data), "--num", "4"]
    for metrics in ([], ["--metrics", "pr"], ["--metrics", "fid,pr"]):       # the default has pr too
        assert evaluate.main([*args, *metrics, "--out", str(tmp_path / "m.json")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: --metrics pr needs 4 real images and the dataset has 3; score it with --metrics fid,kid"]
    assert not (tmp_path / "m.json").exists()
    evaluated = []
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: evaluated.append(k["metrics"]) or {"fid": 1.0, "kid": 0.0})
    assert evaluate.main([*args, "--metrics", "fid,kid", "--out", str(tmp_path / "m.json")]) == 0
    assert len(evaluated) == 1 and (tmp_path / "m.json").exists()


@pytest.mark.parametrize("out", ["new/deeper/m.json", "m.json", "ABSOLUTE/new/m.json", ""])
def test_the_json_is_written_where_out_says_creating_its_folders(weights, tmp_path, monkeypatch, capsys, out):
    """``--out`` in folders that do not exist yet (relative or absolute) creates them and writes the printed
    JSON there; a bare file name lands in the working directory; no ``--out`` prints and writes nothing."""
    import json

    import progan.metrics.evaluation
    from metric_utils import StandInFeatures
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data", count=4)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator", lambda *a, **kw: {"fid": 3.5})
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = out.replace("ABSOLUTE", str(tmp_path / "abs"))
    before = {p for p in tmp_path.rglob("*") if "cache" not in p.parts}
    assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "4",
                          "--metrics", "fid", *(["--out", out] if out else [])]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fid"] == 3.5
    written = {p for p in tmp_path.rglob("*") if "cache" not in p.parts and p.is_file()} - before
    if out:
        target = work / out                      # an absolute `out` replaces `work`
        assert written == {target} and json.loads(target.read_text()) == printed
    else:
        assert written == set()


@pytest.mark.parametrize("weights", ["hf://org/repo", "hf://org/repo@main/model.safetensors",
                                     "https://example.invalid/m.safetensors", "http://example.invalid/m",
                                     "HF://org/repo", "Https://example.invalid/m.safetensors"])
def test_remote_weights_of_every_scheme_need_allow_remote_weights(capsys, monkeypatch, weights):
    """http://, https:// and hf:// (the three schemes ``resolve_weights`` downloads, in whatever case it reads
    them) are refused without --allow-remote-weights, one line and exit 2, before anything is loaded; with
    the flag the same string goes on to the loader (a stand-in here, so nothing is downloaded)."""
    import families

    loaded = []

    def stand_in(source, **kwargs):
        loaded.append(source)
        raise SystemExit(0)

    monkeypatch.setattr(families, "load_generator", stand_in)
    assert evaluate.main(["--weights", weights]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --weights is remote; pass --allow-remote-weights to download it"]
    assert loaded == []
    with pytest.raises(SystemExit):
        evaluate.main(["--weights", weights, "--allow-remote-weights"])
    assert loaded == [weights]


def test_evaluate_cli_caches_the_real_statistics_and_the_next_run_reads_them(weights, tmp_path, monkeypatch, capsys):
    """The fast twin of the slow one/two-process run: ``evaluate.py`` twice on the same 8-image folder with
    ``GAN_STUDIO_CACHE`` set. The first run's feature network sees the 4 generated and all 8 real images
    and leaves one ``real-*.safetensors`` under ``$GAN_STUDIO_CACHE/fid-stats``; the second sees only the
    4 generated (the reals' statistics come from that file) and reports the same FID and KID, since its
    generated samples (seed 0) and real statistics are the first run's. A CLI that did not pass its cache
    directory on would extract the reals again and leave no file."""
    data = make_image_folder(tmp_path / "data", count=8)
    network = CountingFeatures()
    rows = network.rows
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: network)
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    runs = []
    for expected_rows in (4 + 8, 4):
        rows.clear()
        capsys.readouterr()
        assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "4", "--batch", "4",
                              "--metrics", "fid,kid"]) == 0
        assert sum(rows) == expected_rows, runs
        runs.append(json.loads(capsys.readouterr().out))
        assert len(list((tmp_path / "cache" / "fid-stats").glob("real-*.safetensors"))) == 1
    for metric in ("fid", "kid"):
        assert runs[1][metric] == pytest.approx(runs[0][metric], rel=1e-5, abs=1e-7), metric


class _OtherRank(Accelerator):
    """One of two processes of a launch, in this one process: not the main one."""

    @property
    def num_processes(self):
        return 2

    @property
    def is_main_process(self):
        return False


def test_evaluate_cli_under_several_processes_writes_only_from_the_main_one_and_refuses_nearest(
        weights, tmp_path, monkeypatch, capsys):
    """Under ``accelerate launch`` every process computes its share, but only the main process prints and
    writes the summary: another one returns 0 with no --out. ``--nearest`` runs in one process only and
    says so (exit 2)."""
    import accelerate

    data = make_image_folder(tmp_path / "data", count=4)
    monkeypatch.setattr(accelerate, "Accelerator", _OtherRank)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    evaluated = []
    monkeypatch.setattr("progan.metrics.evaluation.evaluate_generator",
                        lambda *a, **k: evaluated.append(1) or {"fid": 1.0, "kid": 0.0})
    base = ["--weights", str(weights["progan"]), "--data", str(data), "--num", "4", "--out", str(tmp_path / "m.json")]
    assert evaluate.main([*base, "--metrics", "fid,kid"]) == 0
    assert evaluated == [1] and not (tmp_path / "m.json").exists() and capsys.readouterr().out == ""
    assert evaluate.main([*base, "--nearest"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --nearest runs in one process; run it with python, not accelerate launch")


def test_python_evaluate_py_exits_with_mains_status(weights, monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["evaluate.py", "--weights", str(weights["progan"]), "--num", "1"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "evaluate.py"), run_name="__main__")
    assert exit_.value.code == 2 and "--num must be >= 2" in capsys.readouterr().err
