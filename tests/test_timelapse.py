"""scripts/timelapse.py on a synthetic run: sample grids of changing size, a log with the schedule."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import timelapse  # noqa: E402


@pytest.fixture
def run(tmp_path):
    """Grids at 0, 4, 8, 12, 16 kimg; the first two are 16 px (written by an older trainer), the rest 32 px.
    The log trains 4 px until 6 kimg, fades in 8 px from 6 to 10, then 8 px stable."""
    (tmp_path / "samples").mkdir()
    rng = np.random.default_rng(0)
    for kimg in (0, 4, 8, 12, 16):
        side = 16 if kimg < 8 else 32
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "samples" / f"grid-{kimg:09.3f}kimg.png")
    records = [{"kimg": k, "resolution": 4 if k <= 6 else 8, "alpha": 1.0 if k <= 6 or k >= 10 else (k - 6) / 4}
               for k in np.arange(0.5, 17, 0.5).tolist()]
    lines = [json.dumps(r) for r in records] + ['{"kimg": 17.0, "resolu']  # a run killed mid-line
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_schedule_lookup(run):
    schedule = timelapse.read_schedule(run)
    assert len(schedule) == 33                                             # the broken last line is skipped
    assert timelapse._at(schedule, 0.0) == (4, 1.0)                        # before the first record: the start
    assert timelapse._at(schedule, 4.0) == (4, 1.0)
    assert timelapse._at(schedule, 8.0) == (8, 0.5)                        # mid fade-in
    assert timelapse._at(schedule, 16.0) == (8, 1.0)
    assert timelapse._at([], 3.0) is None


def test_frames_are_upscaled_to_the_final_size_and_stamped(run):
    got = list(timelapse.frames(run, min_size=1))
    assert [k for k, _ in got] == [0, 4, 8, 12, 16]
    assert all(f.shape == (32 + timelapse.BAND, 32, 3) for _, f in got)
    with Image.open(run / "samples" / "grid-00000.000kimg.png") as first:
        small = np.asarray(first.convert("RGB"))
    np.testing.assert_array_equal(got[0][1][:32], small.repeat(2, axis=0).repeat(2, axis=1))  # nearest, 2x
    bands = [f[32:] for _, f in got]
    assert bands[0].max() > 0                                              # text was drawn
    assert not np.array_equal(bands[0], bands[1]) and not np.array_equal(bands[2], bands[3])  # kimg differs


def test_writes_mp4_and_gif(run, tmp_path):
    assert timelapse.main([str(run), "--out", str(tmp_path / "out" / "tl"), "--fps", "5", "--gif-frames", "3",
                           "--min-size", "64"]) == 0
    mp4, gif = tmp_path / "out" / "tl.mp4", tmp_path / "out" / "tl.gif"
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert sum(1 for _ in reader) == 5
    assert tuple(meta["size"]) == (64, 64 + timelapse.BAND)               # enlarged 2x to reach 64 px, then stamped
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (64, 64 + timelapse.BAND)
        image.seek(2)
        last = np.asarray(image.convert("RGB"))
    final = list(timelapse.frames(run, min_size=64))[-1][1]
    assert np.abs(last.astype(int) - final).mean() < 8                    # the GIF ends on the last grid
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tl.gif", "tl.mp4"]  # no temp files left


def test_a_run_without_grids_is_one_line(tmp_path, capsys):
    assert timelapse.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no sample grids") and not list(tmp_path.iterdir())
    assert timelapse.main([str(tmp_path / "missing")]) == 2


def test_a_gif_with_fewer_frames_lasts_as_long_as_the_mp4(run, tmp_path):
    """--fps is the MP4's rate and the GIF 'lasts as long': 5 grids at 5 fps are a 1.0 s MP4, so the GIF of 3
    kept grids must total 1.0 s too (its frame durations read back from the file; GIF stores centiseconds,
    so within one MP4 frame)."""
    fps, out = 5.0, tmp_path / "out" / "tl"
    assert timelapse.main([str(run), "--out", str(out), "--fps", str(fps), "--gif-frames", "3",
                           "--min-size", "32"]) == 0
    mp4_frames = sum(1 for _ in imageio_ffmpeg.read_frames(str(out.with_suffix(".mp4")))) - 1  # minus the meta
    assert mp4_frames == 5
    mp4_seconds = mp4_frames / fps
    durations = []
    with Image.open(out.with_suffix(".gif")) as image:
        assert image.n_frames == 3
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
    assert abs(sum(durations) / 1000 - mp4_seconds) <= 1 / fps


def test_min_size_rounds_the_whole_enlargement_factor_up(run):
    """The final grids are 32 px: --min-size 40 needs the factor ceil(40 / 32) = 2 (64 px, at least 40),
    not 1 (32 px, below what was asked); 64 is exactly 2, 65 needs 3, and 1 leaves the size as it is."""
    for min_size, side in ((40, 64), (64, 64), (65, 96), (1, 32)):
        _, frame = next(iter(timelapse.frames(run, min_size=min_size)))
        assert frame.shape == (side + timelapse.BAND, side, 3), min_size


def test_each_frame_is_stamped_with_its_kimg_resolution_and_only_a_real_fade_in(run, monkeypatch):
    texts = []
    monkeypatch.setattr(timelapse, "stamp", lambda image, text: texts.append(text) or np.zeros((1, 1, 3), np.uint8))
    list(timelapse.frames(run, min_size=1))
    assert texts == ["0.0 kimg | 4 px", "4.0 kimg | 4 px", "8.0 kimg | 8 px, fade-in 0.50", "12.0 kimg | 8 px",
                     "16.0 kimg | 8 px"]


@pytest.mark.parametrize("fps, delay", [(6, 170), (12, 80), (4, 250), (100, 10)])
def test_gif_delay_is_the_frame_time_rounded_to_centiseconds(tmp_path, fps, delay):
    from app.video import write_gif

    frames = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    write_gif(frames, tmp_path / "a.gif", fps=fps, min_size=1)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.info["duration"] == delay  # 1000/6 = 166.7 ms -> 17 cs, not truncated to 16


def test_wide_grids_keep_their_width_and_height_when_enlarged(tmp_path):
    """Grids 3 tiles wide and 2 high (48x32 px, an older 24x16 one first): every frame is the last grid's size
    times the whole factor ceil(40 / 32) = 2, width and height kept apart (96 wide, 64 high), each grid
    pixel a 2x2 (the older grid: 4x4) square of its colour."""
    (tmp_path / "samples").mkdir()
    rng = np.random.default_rng(1)
    grids = {0: rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), 4: rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)}
    for kimg, pixels in grids.items():
        Image.fromarray(pixels).save(tmp_path / "samples" / f"grid-{kimg:09.3f}kimg.png")
    got = dict(timelapse.frames(tmp_path, min_size=40))
    for kimg, factor in ((0, 4), (4, 2)):
        frame = got[kimg]
        assert frame.shape == (64 + timelapse.BAND, 96, 3), kimg
        np.testing.assert_array_equal(frame[:64], grids[kimg].repeat(factor, axis=0).repeat(factor, axis=1))


@pytest.mark.parametrize("option, inside, outside", [
    ("--fps", "0.5", "0.49"), ("--fps", "60", "60.5"), ("--gif-frames", "1", "0"),
    ("--min-size", "1", "0"), ("--min-size", "4096", "4097"),
])
def test_option_bounds_are_inclusive(tmp_path, capsys, option, inside, outside):
    """--fps in [0.5, 60], --gif-frames >= 1, --min-size in [1, 4096], both ends included: a value at the
    bound passes the check (and the missing run is what is refused), one just outside is the option error."""
    missing = str(tmp_path / "missing")
    assert timelapse.main([missing, option, inside]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert timelapse.main([missing, option, outside]) == 2
    assert "--fps must be in [0.5, 60]" in capsys.readouterr().err


def test_the_default_fps_is_12(run, tmp_path):
    """Without --fps the film plays at the documented 12 fps (the module's usage line, `[--fps 12]`): the MP4
    says 12 frames per second, so 5 grids last 5 / 12 s, and the GIF of all 5 lasts as long (its delay is
    1000 / 12 = 83.3 ms, stored as 8 cs)."""
    out = tmp_path / "out" / "tl"
    assert timelapse.main([str(run), "--out", str(out), "--min-size", "32"]) == 0
    reader = imageio_ffmpeg.read_frames(str(out.with_suffix(".mp4")))
    meta = next(reader)
    assert sum(1 for _ in reader) == 5 and meta["fps"] == pytest.approx(12.0)
    with Image.open(out.with_suffix(".gif")) as image:
        assert image.n_frames == 5 and image.info["duration"] == 80


@pytest.mark.parametrize("where", ["a grid", "the gif"])
def test_a_run_that_fails_part_way_leaves_neither_temporary_file(run, tmp_path, monkeypatch, capsys, where):
    """Both outputs are written to hidden temporary files beside them and renamed at the end, so a failure
    part-way (an unreadable grid in the middle, with the MP4 half written; the GIF writer stopped by
    Ctrl-C once the MP4 is done) leaves the output folder as it was: no .mp4, no .gif, no hidden .tl-* file."""
    import app.video

    out = tmp_path / "out"
    out.mkdir()
    if where == "a grid":
        (run / "samples" / "grid-00008.000kimg.png").write_bytes(b"not a png")  # the third of five
        assert timelapse.main([str(run), "--out", str(out / "tl"), "--min-size", "32"]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    else:
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(app.video, "write_gif", interrupted)
        with pytest.raises(KeyboardInterrupt):
            timelapse.main([str(run), "--out", str(out / "tl"), "--min-size", "32"])
    assert sorted(p.name for p in out.iterdir()) == []
