"""data_prep's byte cap (data_prep/sources.py): no file or archive member is read whole beyond ``max_bytes``.

A zip bomb (a few KiB that inflate to many MiB) and an oversized member are skipped with the
manifest reason ``too_many_bytes``, the rest of the source is kept, and reading the bomb never
allocates its inflated size.
"""
from __future__ import annotations

import io
import json
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import prepare
from data_prep.errors import SkipImage
from data_prep.items import Item
from data_prep.sources import DEFAULT_MAX_BYTES, open_source, read_item

CAP = 1 << 20          # 1 MiB for the tests; the default is 256 MiB
BOMB = 32 << 20        # inflated size of the zip bomb: 32x the cap


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _zip_bomb(path: Path) -> Path:
    """Three good PNGs and ``bomb.png``: 32 MiB of zeros deflated to ~32 KiB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(f"ok{i}.png", _png(i))
        with archive.open("bomb.png", "w", force_zip64=True) as member:
            zeros = bytes(1 << 20)
            for _ in range(BOMB >> 20):
                member.write(zeros)
    assert path.stat().st_size < BOMB // 100
    return path


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_default_cap_is_far_above_real_images():
    assert DEFAULT_MAX_BYTES == 256 << 20


def test_zip_bomb_is_skipped_with_its_reason(tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.zip")
    out = prepare(bomb, tmp_path / "out", resolution=8, workers=1, progress=False, max_bytes=CAP)
    manifest = _manifest(out)
    assert manifest["counts"]["kept"] == 3
    assert manifest["counts"]["skipped_by_reason"] == {"too_many_bytes": 1}
    (entry,) = manifest["skipped"]
    assert entry["file"] == "bomb.png" and f"max_bytes={CAP}" in entry["detail"]
    assert manifest["settings"]["max_bytes"] == CAP


def test_zip_bomb_is_never_inflated(tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.zip")
    tracemalloc.start()
    try:
        with pytest.raises(SkipImage) as info:
            read_item(Item("bomb.png", path=str(bomb), member="bomb.png"), max_bytes=CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "too_many_bytes"
    assert peak < 4 * CAP, f"reading the bomb allocated {peak} bytes"


def test_oversized_tar_member_is_skipped_and_the_rest_kept(tmp_path):
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as archive:
        for name, data in (("a.png", _png(1)), ("huge.png", bytes(CAP + 1)), ("b.png", _png(2))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    items = list(open_source(path, max_bytes=CAP).items)
    assert [i.name for i in items] == ["a.png", "huge.png", "b.png"]
    assert items[1].data is None and items[1].reason == "too_many_bytes"  # never read into memory
    out = prepare(path, tmp_path / "out", resolution=8, workers=1, progress=False, max_bytes=CAP)
    manifest = _manifest(out)
    assert manifest["counts"]["kept"] == 2
    assert [(e["file"], e["reason"]) for e in manifest["skipped"]] == [("huge.png", "too_many_bytes")]


def test_oversized_file_in_a_folder_is_skipped(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "small.png").write_bytes(_png(3))
    (folder / "large.png").write_bytes(_png(4) + bytes(CAP))  # a valid PNG with trailing bytes
    out = prepare(folder, tmp_path / "out", resolution=8, workers=1, progress=False, max_bytes=CAP)
    manifest = _manifest(out)
    assert manifest["counts"]["kept"] == 1
    assert [(e["file"], e["reason"]) for e in manifest["skipped"]] == [("large.png", "too_many_bytes")]
    # exactly at the cap is allowed; one byte more is not
    exact = folder / "exact.bin"
    exact.write_bytes(bytes(CAP))
    assert len(read_item(Item("exact", path=str(exact)), max_bytes=CAP)) == CAP
    with pytest.raises(SkipImage, match="too_many_bytes"):
        read_item(Item("exact", path=str(exact)), max_bytes=CAP - 1)



def test_a_file_longer_than_its_size_said_is_still_capped(tmp_path, monkeypatch):
    """The size check comes first, but the read itself is bounded too: a file that grew after its stat
    (or whose stat says less, like a /proc file's 0) is skipped, not cut to ``max_bytes`` and kept."""
    import os

    import data_prep.sources as sources

    path = tmp_path / "grown.bin"
    path.write_bytes(bytes(CAP + 1))
    real_fstat = os.fstat
    monkeypatch.setattr(sources.os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 0, *real_fstat(fd)[7:])))
    with open(path, "rb") as handle:
        assert sources.os.fstat(handle.fileno()).st_size == 0                # the stat now says 0 bytes
    with pytest.raises(SkipImage, match="too_many_bytes"):
        read_item(Item("grown", path=str(path)), max_bytes=CAP)
    path.write_bytes(bytes(CAP))
    assert len(read_item(Item("grown", path=str(path)), max_bytes=CAP)) == CAP   # exactly the cap is kept

def test_cli_flag_sets_the_cap(tmp_path):
    from data_prep.__main__ import build_parser

    assert build_parser().parse_args(["x", "--out", "y", "--resolution", "8"]).max_mib == 256
    assert build_parser().parse_args(["x", "--out", "y", "--resolution", "8", "--max-mib", "3"]).max_mib == 3
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["x", "--out", "y", "--resolution", "8", "--max-mib", "0"])
    assert info.value.code == 2  # argparse's usage error, not any exit


def test_an_in_memory_item_above_the_cap_is_skipped():
    """Items that carry their bytes (tar members, OpenMoji renders) are capped by read_item as well:
    exactly ``max_bytes`` is kept, one byte more is too_many_bytes."""
    assert read_item(Item("fits", data=bytes(10)), max_bytes=10) == bytes(10)
    with pytest.raises(SkipImage) as info:
        read_item(Item("over", data=bytes(11)), max_bytes=10)
    assert info.value.reason == "too_many_bytes"


def test_a_tar_member_longer_than_its_header_said_is_skipped_and_the_rest_kept(tmp_path, monkeypatch):
    """tarfile stops at the header's size, but the capped read is still the last word: a member whose
    read brings more than ``max_bytes`` (a handle that lies) is one skipped item, the next member is read."""
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as archive:
        for name, data in (("a.png", _png(1)), ("liar.png", _png(2)), ("b.png", _png(3))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    real_extract = tarfile.TarFile.extractfile

    def extract(self, member):
        name = getattr(member, "name", member)
        return io.BytesIO(bytes(CAP + 1)) if name == "liar.png" else real_extract(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", extract)
    items = list(open_source(path, max_bytes=CAP).items)
    assert [(i.name, i.error and i.reason) for i in items] == [
        ("a.png", None), ("liar.png", "too_many_bytes"), ("b.png", None)]
    assert items[0].data == _png(1) and items[2].data == _png(3) and items[1].data is None


def test_a_tar_or_zip_member_of_exactly_the_cap_is_read_one_byte_less_cap_skips_it(tmp_path):
    """Archive members are checked against ``max_bytes`` by their declared size before any read: a member of
    exactly ``max_bytes`` bytes is read whole, with a cap one byte smaller it is too_many_bytes (tar: the
    header's size; zip: the central directory's)."""
    data = _png(5)
    tar_path, zip_path = tmp_path / "a.tar", tmp_path / "a.zip"
    with tarfile.open(tar_path, "w") as archive:
        info = tarfile.TarInfo("a.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("a.png", data)
    [member] = open_source(tar_path, max_bytes=len(data)).items
    assert member.data == data and member.error is None
    [member] = open_source(tar_path, max_bytes=len(data) - 1).items
    assert member.data is None and member.reason == "too_many_bytes"
    [member] = open_source(zip_path, max_bytes=len(data)).items
    assert read_item(member, max_bytes=len(data)) == data
    with pytest.raises(SkipImage) as info:
        read_item(member, max_bytes=len(data) - 1)
    assert info.value.reason == "too_many_bytes"


def test_max_bytes_of_one_is_a_cap_and_zero_is_refused(tmp_path):
    """``max_bytes >= 1``: 1 is a valid (if useless) cap that skips every image as too_many_bytes; 0 is a
    one-line DataPrepError about the argument."""
    from data_prep import DataPrepError

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png(6))
    with pytest.raises(DataPrepError, match=r"was skipped: \{'too_many_bytes': 1\}"):
        prepare(folder, tmp_path / "one", resolution=8, workers=1, progress=False, max_bytes=1)
    with pytest.raises(DataPrepError, match="max_bytes must be >= 1, got 0"):
        prepare(folder, tmp_path / "zero", resolution=8, workers=1, progress=False, max_bytes=0)
