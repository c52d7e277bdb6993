"""data_prep.sources: which items a source lists, in which order, under ``limit``.

Folders and zips list their images in sorted path order whatever order the disk or the archive holds
them in (a zip written in reverse here), and ``limit`` keeps the first N of that order; a tar is read
front to back, so it keeps the first N images in archive order. Names are built by hand. Every archive
suffix accepted (.tar, .tar.gz, .tgz, .tar.bz2, .tbz2, .tar.xz, .txz, .zip) yields the same images.
Every image extension promised (.gif too), in lower or upper case, is listed by every kind of source.
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

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


def _one_byte_files(tmp_path: Path, kind: str, names: list[str]) -> Path:
    """A source holding one byte per name (paths with folders allowed): a folder, a zip, or a tar in the given order."""
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
    return source


MACOS = ["._top.png", "a/._one.png", "a/b/._two.png", "a/b/c/._three.png",          # AppleDouble at depth 0-3
         "__MACOSX/._top.png", "__MACOSX/a/b/x.png", "a/__MACOSX/y.png"]             # the metadata folder
KEPT = ["a/b/c/keep.png", "a/._dir/img.png", "a/b/x._y.png", "top.png"]             # only the file name decides


@pytest.mark.parametrize("kind", ["folder", "zip", "tar"])
def test_macos_metadata_is_ignored_at_any_depth_and_judged_by_the_file_name_alone(tmp_path, kind):
    """A `._name` file (macOS AppleDouble) is metadata whatever folder it sits in, zero to three levels deep,
    and so is anything under a `__MACOSX/` folder; a folder named `._dir` or a name with `._` inside it is
    not. Each source lists the kept images (in its own order) and counts the rest as macos-metadata."""
    opened = open_source(_one_byte_files(tmp_path, kind, MACOS + KEPT))
    listed = [item.name for item in opened.items]
    assert listed == (KEPT if kind == "tar" else sorted(KEPT))
    assert opened.ignored == {"macos-metadata": len(MACOS)}


ARCHIVES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tbz2": "w:bz2", ".tar.xz": "w:xz",
            ".txz": "w:xz", ".zip": None}


@pytest.mark.parametrize("suffix", list(ARCHIVES))
def test_every_archive_suffix_opens_and_yields_the_same_images(tmp_path, suffix):
    """The same six entries (distinct bytes each) written as a .tar, each compressed tar spelling and a
    .zip: every one opens and yields the five images with their own bytes (zips in sorted order)."""
    from data_prep.sources import read_item

    contents = {name: f"bytes of {name}".encode() for name in NAMES}
    path = tmp_path / f"src{suffix}"
    if ARCHIVES[suffix] is None:
        with zipfile.ZipFile(path, "w") as archive:
            for name in NAMES:
                archive.writestr(name, contents[name])
    else:
        with tarfile.open(path, ARCHIVES[suffix]) as archive:
            for name in NAMES:
                info = tarfile.TarInfo(name)
                info.size = len(contents[name])
                archive.addfile(info, io.BytesIO(contents[name]))
    items = list(open_source(path).items)  # a tar's items are read once, front to back
    names = [item.name for item in items]
    assert names == (sorted(IMAGES) if suffix == ".zip" else IMAGES)
    assert [read_item(item) for item in items] == [contents[n] for n in names]


# Every still-image format Pillow reads that data_prep promises (docs/data_prep.md), written out here rather
# than read from IMAGE_EXTENSIONS: JPEG's four spellings, PNG, GIF (its first frame), BMP, WebP, TIFF's two,
# and the four netpbm kinds; upper case too (cameras write .JPG, old tools .GIF).
FORMATS = ".jpg .jpeg .jpe .jfif .png .gif .bmp .webp .tif .tiff .ppm .pgm .pbm .pnm".split()


@pytest.mark.parametrize("kind", ["folder", "zip", "tar"])
def test_every_image_extension_is_listed_in_folders_zips_and_tars_in_either_case(tmp_path, kind):
    """One file per extension, lower and upper case, plus a .txt and a .svg: each source lists the 28 images
    (sorted for folders and zips, in archive order for a tar) and counts only the other two as ignored."""
    images = [f"img{i:02d}{suffix}" for i, suffix in enumerate(FORMATS)]
    images += [f"up{i:02d}{suffix.upper()}" for i, suffix in enumerate(FORMATS)]
    opened = open_source(_one_byte_files(tmp_path, kind, images + ["notes.txt", "logo.svg"]))
    assert [item.name for item in opened.items] == (images if kind == "tar" else sorted(images))
    assert opened.ignored == {".txt": 1, ".svg": 1}
