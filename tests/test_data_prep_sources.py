"""data_prep.sources: which items a source lists, in which order, under ``limit``.

Folders and zips list their images in sorted path order whatever order the disk or the archive holds
them in (a zip written in reverse here), and ``limit`` keeps the first N of that order; a tar is read
front to back, so it keeps the first N images in archive order. Names are built by hand.
"""
from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from data_prep.sources import open_source

NAMES = ["b/2.png", "a/9.png", "c.png", "a/1.png", "notes.txt", "b/10.png"]   # not sorted, one non-image
IMAGES = [n for n in NAMES if n.endswith(".png")]


def _zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        for name in NAMES:
            archive.writestr(name, b"x")
    return path


def _tar(path):
    with tarfile.open(path, "w") as archive:
        for name in NAMES:
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))
    return path


def _folder(path):
    for name in NAMES:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(b"x")
    return path


@pytest.mark.parametrize("limit", [None, 1, 3, 5, 9])
@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_folders_and_zips_list_sorted_paths_and_limit_keeps_the_first(tmp_path, kind, limit):
    source = _folder(tmp_path / "src") if kind == "folder" else _zip(tmp_path / "src.zip")
    opened = open_source(source, limit=limit)
    expected = sorted(IMAGES)[:limit]                # a/1, a/9, b/10, b/2, c
    assert [item.name for item in opened.items] == expected
    assert opened.total == len(expected)
    assert opened.ignored == {".txt": 1}


@pytest.mark.parametrize("limit", [None, 1, 3, 5, 9])
def test_a_tar_keeps_the_first_images_in_archive_order(tmp_path, limit):
    opened = open_source(_tar(tmp_path / "src.tar"), limit=limit)
    assert [item.name for item in opened.items] == IMAGES[:limit]
