"""data_prep's temporary directory (data_prep/writer.py): the output is built in a sibling
`<out>.tmp-<host>-<pid>` and renamed at the end. An interrupted run leaves nothing; a dead run's temp
dir on this host is removed; a temp dir of another host sharing the filesystem is never touched, since
its pid means nothing here."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import prepare


@pytest.fixture
def photos(tmp_path) -> Path:
    """6 small gradient PNGs."""
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(6):
        y, x = np.mgrid[0:36, 0:40 + i]
        pixels = np.stack([x * 6, y * 7, (x + y + i) % 256], -1).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
    return root


def run(source, out, **options) -> tuple[Path, dict]:
    options = {"resolution": 32, "workers": 1, "progress": False, **options}
    path = prepare(source, out, **options)
    return path, json.loads((path / "manifest.json").read_text())


def test_interrupted_run_leaves_nothing_and_rerun_works(photos, tmp_path, monkeypatch):
    from data_prep import pipeline

    real = pipeline.process_item
    calls = {"n": 0}

    def interrupted(item, settings):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(item, settings)

    monkeypatch.setattr(pipeline, "process_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(photos, tmp_path / "ds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    monkeypatch.setattr(pipeline, "process_item", real)
    out, manifest = run(photos, tmp_path / "ds")
    assert manifest["counts"]["kept"] == 6


def test_stale_tmp_of_a_killed_run_is_removed(photos, tmp_path):
    stale = tmp_path / f"ds.tmp-{socket.gethostname()}-999999999"
    stale.mkdir()
    (stale / "images_32.npy").write_bytes(b"half written")
    run(photos, tmp_path / "ds")
    assert not stale.exists()


def test_a_tmp_dir_left_under_this_processs_own_pid_is_replaced(photos, tmp_path):
    """A dead run's pid can come back as this process (pid reuse after a crash or a reboot): its temp dir
    carries this process's own name, which the stale sweep leaves to the live process, so the writer
    clears it itself rather than failing on mkdir or keeping the dead run's files."""
    own = tmp_path / f"ds.tmp-{socket.gethostname()}-{os.getpid()}"
    own.mkdir()
    (own / "images_32.npy").write_bytes(b"half written by a run long dead")
    (own / "leftover.txt").write_text("not ours")
    out, manifest = run(photos, tmp_path / "ds")
    assert not own.exists() and not (out / "leftover.txt").exists()
    assert manifest["counts"]["kept"] > 0 and np.load(out / "images_32.npy").shape[0] == manifest["counts"]["kept"]


def test_another_hosts_temp_dir_is_left_alone_whatever_its_pid(photos, tmp_path):
    """Nodes sharing a filesystem each write `<out>.tmp-<their host>-<their pid>`. A pid of another host
    cannot be checked from here (999999999 is dead on this host, yet may be a live run there), so only
    this host's dead temp dirs are removed; the other node's, with its half-written file, stays as is."""
    here = socket.gethostname()
    others = [tmp_path / f"ds.tmp-not-{here}-999999999", tmp_path / f"ds.tmp-{here}x-999999999"]
    for other in others:
        other.mkdir()
        (other / "images_32.npy").write_bytes(b"being written on another node")
    ours = tmp_path / f"ds.tmp-{here}-999999999"
    ours.mkdir()
    run(photos, tmp_path / "ds")
    assert not ours.exists()
    for other in others:
        assert (other / "images_32.npy").read_bytes() == b"being written on another node"
