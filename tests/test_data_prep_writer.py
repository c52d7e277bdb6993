"""The dataset writer (data_prep/writer.py): its temporary directory and the files it opens."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from PIL import Image

import data_prep.writer as writer
from data_prep import prepare


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / f"{i}.png")
    return root


def test_a_leftover_tmp_under_this_processs_own_name_is_replaced(folder, tmp_path):
    """A killed run can leave ``<out>.tmp-<host>-<pid>`` whose pid is now ours (pids restart in a fresh
    container): the stale-tmp sweep keeps it (that pid is alive), so the writer clears it itself instead of
    failing to create it, and none of its contents reach the dataset."""
    mine = tmp_path / f"ds.tmp-{socket.gethostname()}-{os.getpid()}"
    mine.mkdir()
    (mine / "junk.bin").write_bytes(b"half written")
    out = prepare(folder, tmp_path / "ds", resolution=8, workers=1, progress=False)
    assert not mine.exists() and not (out / "junk.bin").exists()
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == 3


def test_every_file_the_writer_opens_is_closed_when_the_dataset_is_committed(folder, tmp_path, monkeypatch):
    """No descriptor outlives the commit (a leak in a long-lived process; Windows cannot rename a directory
    with open files)."""
    opened = []

    def recording_open(*args, **kwargs):
        opened.append(open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(writer, "open", recording_open, raising=False)
    opened_before_commit = []
    commit = writer.DatasetWriter.commit

    def checked_commit(self, *args, **kwargs):
        opened_before_commit.extend(opened)  # the per-resolution image files
        out = commit(self, *args, **kwargs)
        assert all(handle.closed for handle in opened), [h.name for h in opened if not h.closed]
        return out

    monkeypatch.setattr(writer.DatasetWriter, "commit", checked_commit)
    out = prepare(folder, tmp_path / "ds", resolution=8, workers=1, progress=False)
    stored = json.loads((out / "manifest.json").read_text())["resolutions"]
    assert sorted(os.path.basename(h.name) for h in opened_before_commit) == sorted(f"images_{r}.npy" for r in stored)


def test_a_dataset_that_appears_while_writing_is_kept_without_overwrite(folder, tmp_path, monkeypatch):
    """The output is checked before the work and again just before the rename: another run's dataset that
    appeared at ``out`` meanwhile is refused (``OutputExists``) and left as it was, and our tmp dir removed;
    only ``overwrite=True`` may replace it."""
    from data_prep.errors import OutputExists

    out = tmp_path / "ds"
    commit = writer.DatasetWriter.commit

    def someone_else_writes_first(self, *args, **kwargs):
        out.mkdir()
        (out / "manifest.json").write_text('{"theirs": true}\n')
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(writer.DatasetWriter, "commit", someone_else_writes_first)
    with pytest.raises(OutputExists, match="output exists"):
        prepare(folder, out, resolution=8, workers=1, progress=False)
    assert json.loads((out / "manifest.json").read_text()) == {"theirs": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "photos"]
