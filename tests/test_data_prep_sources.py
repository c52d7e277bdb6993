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


MACOS = ["._top.png", "a/._one.png", "a/b/._two.png", "a/b/c/._three.png",          # AppleDouble at depth 0-3
         "__MACOSX/._top.png", "__MACOSX/a/b/x.png", "a/__MACOSX/y.png"]             # the metadata folder
KEPT = ["a/b/c/keep.png", "a/._dir/img.png", "a/b/x._y.png", "top.png"]             # only the file name decides


@pytest.mark.parametrize("kind", ["folder", "zip", "tar"])
def test_macos_metadata_is_ignored_at_any_depth_and_judged_by_the_file_name_alone(tmp_path, kind):
    """A `._name` file (macOS AppleDouble) is metadata whatever folder it sits in, zero to three levels deep,
    and so is anything under a `__MACOSX/` folder; a folder named `._dir` or a name with `._` inside it is
    not. Each source lists the kept images (in its own order) and counts the rest as macos-metadata."""
    names = MACOS + KEPT
    if kind == "folder":
        source = tmp_path / "src"
        for name in names:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(b"x")
    elif kind == "zip":
        source = tmp_path / "src.zip"
        with zipfile.ZipFile(source, "w") as archive:
            for name in names:
                archive.writestr(name, b"x")
    else:
        source = tmp_path / "src.tar"
        with tarfile.open(source, "w") as archive:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 1
                archive.addfile(info, io.BytesIO(b"x"))
    opened = open_source(source)
    listed = [item.name for item in opened.items]
    assert listed == (KEPT if kind == "tar" else sorted(KEPT))
    assert opened.ignored == {"macos-metadata": len(MACOS)}
