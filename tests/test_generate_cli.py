"""``python -m app.generate``: grid, interpolation (MP4 + GIF) and style mixing in a subprocess (slow: each
run imports torch); error handling in-process through ``main`` (fast)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from app.generate import main
from families import FAMILIES

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.generate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_grid(weights, tmp_path, family_name):
    out = tmp_path / "grid.png"
    done = _run("--weights", str(weights[family_name]), "--seeds", "0-5", "--psi", "0.7", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (3 * 16, 2 * 16)                                  # 6 images: 3 columns, 2 rows


@pytest.mark.slow
def test_interpolate_mp4_and_gif(weights, tmp_path):
    import imageio_ffmpeg

    mp4, gif = tmp_path / "walk.mp4", tmp_path / "walk.gif"
    base = ["interpolate", "--weights", str(weights["stylegan_lite"]), "--seeds", "1,2,3", "--frames", "12"]
    done = _run(*base, "--space", "w", "--method", "lerp", "--out", str(mp4))
    assert done.returncode == 0, done.stderr
    assert mp4.read_bytes()[4:8] == b"ftyp"
    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert frames == 12
    done = _run(*base, "--method", "slerp", "--loop", "--out", str(gif))
    assert done.returncode == 0, done.stderr
    with Image.open(gif) as image:
        assert image.n_frames == 12 and image.size == (256, 256)               # 16 px upscaled x16, nearest


@pytest.mark.slow
def test_mix(weights, tmp_path):
    out = tmp_path / "mix.png"
    done = _run("mix", "--weights", str(weights["stylegan_lite"]), "--rows", "1,2", "--cols", "3-5",
                "--styles", "middle", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (4 * 16, 3 * 16)                                  # corner + 3 columns, top row + 2 rows


@pytest.mark.parametrize("args, message", [
    (["mix", "--styles", "fine"], "no fine layers"),
    (["--seeds", "9-1"], "runs backwards"),
    (["--psi", "5"], "psi must be between"),
    (["interpolate", "--seeds", "1", "--frames", "4"], "at least two seeds"),
])
def test_errors_are_one_line(weights, tmp_path, capsys, args, message):
    suffix = ".gif" if args[0] == "interpolate" else ".png"
    assert main([*args, "--weights", str(weights["stylegan_lite"]), "--out", str(tmp_path / f"x{suffix}")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_weights_file(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["--weights", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a valid safetensors" in capsys.readouterr().err


def test_out_suffix_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["interpolate", "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2  # argparse's usage error, not any exit
    assert "--out must end in .mp4, .gif for interpolate" in capsys.readouterr().err
