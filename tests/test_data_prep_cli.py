"""`python -m data_prep`'s flags, each given a non-default value, checked by what it does to the dataset.

The CLI is a layer that could drop a flag on its way to `prepare` (as evaluate.py once dropped
`--background`); a manifest that records the settings would then still look plausible. So each flag's
effect is checked on pixels and counts worked out by hand from a five-file folder, against the same
folder prepared with every default.
Last, SIGTERM mid-run (a real signal, in a subprocess): cleaned up, one line, exit 130.
"""

from __future__ import annotations

import io
import json
import signal

import numpy as np
import pytest
from PIL import Image

from data_prep.__main__ import main

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(autouse=True)
def _keep_sigterm():
    """main() installs its SIGTERM handler in this (pytest's) process; put the old one back."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


def _png(colour, size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def _folder(root):
    """a, b: the same red square (b is a duplicate); c: 4x4 blue (below 8 px); d: green with 1 MiB of
    trailing bytes (a valid PNG above a 1 MiB cap); e: white. Sorted, so --limit 4 leaves e out."""
    root.mkdir()
    (root / "a.png").write_bytes(_png(RED))
    (root / "b.png").write_bytes(_png(RED))
    (root / "c.png").write_bytes(_png(BLUE, (4, 4)))
    (root / "d.png").write_bytes(_png(GREEN) + bytes(1 << 20))
    (root / "e.png").write_bytes(_png(WHITE))
    return root


def _read(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest, json.loads((out / "names.json").read_text()), np.load(out / "images_8.npy")


def luma(rgb) -> int:
    """PIL's 'L': ITU-R 601 luma, (299 R + 587 G + 114 B) / 1000, rounded."""
    return round((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000)


def test_every_flag_reaches_the_dataset(tmp_path, capsys):
    source = _folder(tmp_path / "src")
    common = [str(source), "--resolution", "8", "--workers", "1", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    manifest, names, images = _read(tmp_path / "plain")
    # defaults: no dedupe, no upscale (c too small), 256 MiB cap (d kept), every image, RGB, pyramid 8 and 4
    assert names == ["a.png", "b.png", "d.png", "e.png"] and manifest["counts"]["found"] == 5
    assert [(s["file"], s["reason"]) for s in manifest["skipped"]] == [("c.png", "too_small")]
    assert images.shape == (4, 3, 8, 8) and (tmp_path / "plain" / "images_4.npy").exists()
    assert [tuple(image[:, 0, 0]) for image in images] == [RED, RED, GREEN, WHITE]

    flags = ["--dedupe", "--upscale", "--limit", "4", "--max-mib", "1", "--channels", "1", "--no-pyramid"]
    assert main([*common, "--out", str(tmp_path / "flags"), *flags]) == 0
    manifest, names, images = _read(tmp_path / "flags")
    assert manifest["counts"]["found"] == 4                                   # --limit 4: e never read
    assert manifest["counts"]["duplicates"] == 1                              # --dedupe: b dropped
    assert [(s["file"], s["reason"]) for s in manifest["skipped"]] == [("d.png", "too_many_bytes")]  # --max-mib 1
    assert names == ["a.png", "c.png"]                                        # --upscale: c kept
    assert images.shape == (2, 1, 8, 8)                                       # --channels 1
    assert (images[0] == luma(RED)).all()
    assert (np.abs(images[1].astype(int) - luma(BLUE)) <= 1).all()            # upscaled: Lanczos of a flat square
    assert not (tmp_path / "flags" / "images_4.npy").exists()                 # --no-pyramid


def test_overwrite_flag_replaces_an_existing_dataset(tmp_path, capsys):
    source = _folder(tmp_path / "src")
    out = ["--out", str(tmp_path / "ds"), str(source), "--resolution", "8", "--workers", "1", "--quiet"]
    assert main([*out, "--limit", "1"]) == 0
    assert main(out) == 2 and "--overwrite" in capsys.readouterr().err
    assert json.loads((tmp_path / "ds" / "names.json").read_text()) == ["a.png"]   # untouched by the refusal
    assert main([*out, "--overwrite"]) == 0
    assert json.loads((tmp_path / "ds" / "names.json").read_text()) == ["a.png", "b.png", "d.png", "e.png"]


def test_crop_and_background_flags_reach_the_dataset(tmp_path, capsys):
    """An 8x4 red image at --resolution 8: the default centre crop's square (4 px) is too small, so it is
    skipped; --crop pad --background 0,0,255 letterboxes it onto an 8x8 square with no resampling, so rows
    0-1 and 6-7 are exactly the background and rows 2-5 exactly red."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "wide.png").write_bytes(_png(RED, (8, 4)))
    (source / "square.png").write_bytes(_png(GREEN))
    common = [str(source), "--resolution", "8", "--workers", "1", "--quiet", "--no-pyramid"]
    assert main([*common, "--out", str(tmp_path / "centre")]) == 0
    manifest, names, _ = _read(tmp_path / "centre")
    assert names == ["square.png"] and [s["reason"] for s in manifest["skipped"]] == ["too_small"]
    assert main([*common, "--out", str(tmp_path / "pad"), "--crop", "pad", "--background", "0,0,255"]) == 0
    manifest, names, images = _read(tmp_path / "pad")
    assert names == ["square.png", "wide.png"] and manifest["settings"]["crop"] == "pad"
    wide = images[1].transpose(1, 2, 0)                                       # [8, 8, 3]
    assert (wide[[0, 1, 6, 7]] == BLUE).all() and (wide[2:6] == RED).all()
    assert (images[0].transpose(1, 2, 0) == GREEN).all()                      # a square image is unchanged


def test_labels_flag_reaches_the_dataset(tmp_path, capsys):
    """``--labels folders`` and ``--labels FILE`` through the CLI: labels.npy holds each image's class, told
    from its own pixels (``write_images`` puts 200 + i in the blue channel of blue/, the red of red/); the
    file swaps the folders' meaning (blue -> "warm", red -> "cool") so the file, not the folder, decides.
    Without the flag a folder tree gets no labels at all."""
    from image_utils import labelled_source

    source = labelled_source(tmp_path)
    common = [str(source), "--resolution", "8", "--workers", "1", "--quiet", "--no-pyramid"]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    assert "classes" not in _read(tmp_path / "plain")[0] and not (tmp_path / "plain" / "labels.npy").exists()

    table = tmp_path / "labels.csv"
    table.write_text("name,class\n" + "".join(f"{folder}/{i:02d}.png,{'warm' if folder == 'blue' else 'cool'}\n"
                                              for folder, n in (("blue", 3), ("red", 5)) for i in range(n)))
    for k, (flag, by_channel) in enumerate((("folders", {2: "blue", 0: "red"}), (str(table), {2: "warm", 0: "cool"}))):
        out = tmp_path / f"ds{k}"
        assert main([*common, "--out", str(out), "--labels", flag]) == 0
        manifest, names, images = _read(out)
        assert len(names) == 8 and manifest["classes"]["counts"] == (
            [3, 5] if flag == "folders" else [5, 3])                       # classes sorted: blue red / cool warm
        labels = np.load(out / "labels.npy")
        for image, label in zip(images, labels):
            brightest = int(np.argmax(image[:, 7, 7]))                    # 200 + i beats the grey 30
            assert manifest["classes"]["names"][label] == by_channel[brightest]


def test_workers_flag_sets_the_worker_processes(tmp_path, capsys, monkeypatch):
    """``--workers N`` is the pool size prepare uses (default: every usable core, made 5 here so that the
    default cannot pass for 1 or 2); a non-integer is argparse's one-line usage error, not a traceback."""
    import data_prep.pipeline as pipeline

    seen, real = [], pipeline.ordered_map
    monkeypatch.setattr(pipeline, "default_workers", lambda: 5)

    def spy(*args, workers, **kwargs):
        seen.append(workers)
        return real(*args, workers=min(workers, 2), **kwargs)

    monkeypatch.setattr(pipeline, "ordered_map", spy)
    source = _folder(tmp_path / "src")
    common = [str(source), "--resolution", "8", "--quiet", "--no-pyramid"]
    for i, flags in enumerate((["--workers", "1"], ["--workers", "2"], [])):
        assert main([*common, "--out", str(tmp_path / f"ds{i}"), *flags]) == 0
        assert _read(tmp_path / f"ds{i}")[1] == ["a.png", "b.png", "d.png", "e.png"]
    assert seen == [1, 2, 5]
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--out", str(tmp_path / "bad"), "--workers", "two"])
    assert exit_info.value.code == 2 and "--workers: invalid int value: 'two'" in capsys.readouterr().err


_SIGTERM_CHILD = """
import os, signal, sys
from data_prep.__main__ import main
from data_prep.writer import DatasetWriter

add = DatasetWriter.add
def add_then_terminate(self, levels):
    add(self, levels)
    # one image is in the tmp dir: say where it is, then the scheduler's kill arrives
    print(self.tmp.name, sorted(p.name for p in self.tmp.iterdir()), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
DatasetWriter.add = add_then_terminate
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_cleans_up_says_interrupted_and_exits_130(tmp_path):
    """``python -m data_prep`` stopped by SIGTERM (kill, a scheduler's time limit) mid-run, after its first image
    reached ``OUT.tmp-<host>-<pid>``: like Ctrl-C it removes that directory, prints ``interrupted: nothing was
    written`` and exits 130 (128 + SIGINT, the shell's code for an interrupted command); Python's default for
    SIGTERM would die at once with -15 and leave the partial arrays behind. A real signal, in a subprocess."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    source = _folder(tmp_path / "src")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.run([sys.executable, "-c", _SIGTERM_CHILD, str(source), "--out", str(tmp_path / "ds"),
                            "--resolution", "8", "--workers", "1", "--quiet"],
                           cwd=root, env=env, capture_output=True, text=True, timeout=60)
    tmp_name, files = child.stdout.split(" ", 1)
    assert tmp_name.startswith("ds.tmp-") and "images_8.npy" in files   # it was mid-run, arrays open
    assert child.returncode == 130, (child.returncode, child.stderr)
    assert child.stderr.strip().splitlines() == ["interrupted: nothing was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]       # no ds, no ds.tmp-*
