"""evaluate.py's argument bounds, each at its exact value (checked before any model is loaded).

A value at a bound passes its check and the run stops at the next one (an invalid ``--metrics`` or
``--background`` given on purpose); one just outside is that bound's own one-line error. Precision/recall
use 3 nearest neighbours besides the image itself, so with ``pr`` each side needs 4 images: fewer used to
generate everything, then end in a ValueError traceback from the metric. Last, where ``--out`` puts the JSON."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate  # noqa: E402


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
    """A dataset of 3 images scores FID and KID but not precision/recall: one line, no traceback."""
    import data_prep
    import progan.metrics.evaluation
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(source / f"{i}.png")
    data = data_prep.prepare(source, tmp_path / "data", resolution=16, workers=1, progress=False)
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: pytest.fail("generated despite too few real images"))
    args = ["--weights", str(weights["progan"]), "--data", str(data), "--num", "4"]
    assert evaluate.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --metrics pr needs 4 real images and the dataset has 3; score it with --metrics fid,kid"]


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
