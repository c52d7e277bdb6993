"""The app's bounds and units at their edges (issue 20, red-team pass R3): values a default or square
fixture would hide.

- ``upscale_nearest`` pads an odd *height* with one edge row and an odd *width* with one edge column:
  a frame that is odd in one side only (5 wide, 4 high) tells the two apart;
- SeFa's ``sigma_i`` is the spread of ``<w, n_i>`` over mapped z (Shen & Zhou 2021, our units of
  strength): estimated here from 20,000 z of another seed, within 5 %;
- projection steps: at least 10 for any model (``Limits.projection_steps_allowed``), and a stream of
  fewer than 12 steps (``steps // 12 == 0``) still yields every step and then the result;
- ``write_video`` reads the suffix without regard to case: ``.MP4`` and ``.GIF`` are videos, not refusals.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.directions import compute_directions
from app.limits import DEFAULT_LIMITS, Limits
from app.video import upscale_nearest
from model_utils import tiny_stylegan


def test_odd_height_gets_a_row_and_odd_width_a_column():
    frames = np.arange(1 * 4 * 5 * 3, dtype=np.uint8).reshape(1, 4, 5, 3)   # even height 4, odd width 5
    out = upscale_nearest(frames, min_size=1)
    assert out.shape == (1, 4, 6, 3)
    np.testing.assert_array_equal(out[:, :, :5], frames)
    np.testing.assert_array_equal(out[:, :, 5], frames[:, :, 4])            # the edge column repeated
    tall = upscale_nearest(frames.transpose(0, 2, 1, 3).copy(), min_size=1)  # 5 high, 4 wide
    assert tall.shape == (1, 6, 4, 3)
    np.testing.assert_array_equal(tall[:, 5], tall[:, 4])


def test_sefa_sigma_is_the_spread_of_w_along_each_direction():
    g = tiny_stylegan(w_avg_scale=2.0)
    d = compute_directions(g, k=4)
    z = torch.randn(20_000, g.config.latent_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        w = g.mapping(z).double()                                              # [S, w_dim]
    expected = (w @ d.vectors.double().T).std(dim=0)                           # [k]
    assert d.sigma.shape == (4,)
    torch.testing.assert_close(d.sigma.double(), expected, rtol=0.05, atol=0)


def test_projection_steps_allowed_has_a_floor_of_ten():
    limits = DEFAULT_LIMITS  # budget 300 * 64 * 64 steps x pixels
    assert limits.projection_steps_allowed(64) == 300
    assert limits.projection_steps_allowed(128) == 75
    assert limits.projection_steps_allowed(1024) == 10          # 300 * 4096 / 1024**2 = 1.2, floored at 10
    assert Limits(projection_budget=0).projection_steps_allowed(16) == 10


def test_a_projection_of_fewer_than_twelve_steps_streams_every_step():
    from app.projection.ui import run_projection

    g = tiny_stylegan()
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    updates = list(run_projection(g, buffer.getvalue(), "a.png", label="sg", steps=5, space="w", limits=DEFAULT_LIMITS))
    assert [u.step for u in updates] == [1, 2, 3, 4, 5] and [u.done for u in updates] == [False] * 4 + [True]


def test_progress_counts_images_done_and_ends_exactly_at_the_total():
    """5 seeds in batches of 2: progress after each batch is 2, 4, then 5 of 5 (never 6 of 5)."""
    from app.sampling import generate_images

    calls: list[tuple[int, int]] = []
    images = generate_images(tiny_stylegan(), [4, 5, 6, 7, 8], batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert len(images) == 5 and calls == [(2, 5), (4, 5), (5, 5)]


def test_mixing_progress_rises_one_step_per_row_and_ends_exactly_at_its_total():
    """A 3-row mixing grid reports once per row and once at the end: 4 reports whose counts rise by one
    each time, never past the total, the last exactly total of total, so the bar fills once and stops."""
    from app.mixing import render_mixing

    calls: list[tuple[int, int]] = []
    render_mixing(tiny_stylegan(), [7, 8, 9], [1, 2], progress=lambda d, t: calls.append((d, t)))
    assert len(calls) == 4
    done = [d for d, _ in calls]
    totals = {t for _, t in calls}
    assert len(totals) == 1 and done == list(range(done[0], done[0] + 4)) and done[0] >= 1
    assert calls[-1][0] == calls[-1][1] and all(0 < d <= t for d, t in calls)


@pytest.mark.parametrize("min_size, side", [(64, 64), (100, 128), (128, 128), (129, 192), (256, 256)])
def test_videos_are_enlarged_by_the_smallest_whole_factor_reaching_min_size(min_size, side):
    """64 px frames: the factor is ceil(min_size / 64), so every side reaches at least ``min_size`` (100 needs 2,
    giving 128; 129 needs 3); each pixel becomes a factor x factor block of itself (nearest neighbour)."""
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    out = upscale_nearest(frames, min_size=min_size)
    assert out.shape == (2, side, side, 3) and side >= min_size
    factor = side // 64
    assert np.array_equal(out[:, ::factor, ::factor], frames)
    assert np.array_equal(out[:, factor - 1::factor, factor - 1::factor], frames)


@pytest.mark.parametrize("name, kind", [("walk.gif", "GIF"), ("walk.GIF", "GIF"), ("walk.Gif", "GIF"),
                                        ("walk.mp4", "MP4"), ("walk.MP4", "MP4")])
def test_video_suffix_picks_the_writer_whatever_its_case(tmp_path, name, kind):
    """``write_video`` picks the format from the suffix without regard to case (the CLI accepts ``--out x.MP4``):
    a ``.GIF`` is a 3-frame GIF, an ``.MP4`` an ISO media file (``ftyp`` box at byte 4) of 3 frames."""
    import imageio_ffmpeg

    from app.video import write_video

    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    path = write_video(frames, tmp_path / name, fps=4, min_size=8)
    assert path == tmp_path / name and path.exists()
    if kind == "GIF":
        with Image.open(path) as image:
            assert image.format == "GIF" and image.n_frames == 3 and image.size == (8, 8)
    else:
        assert path.read_bytes()[4:8] == b"ftyp"
        assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 3


@pytest.mark.parametrize("name", ["walk.png", "walk.MP", "walk", "walk.gif.txt"])
def test_other_video_suffixes_are_one_line_errors(tmp_path, name):
    from app.video import write_video

    with pytest.raises(ValueError, match=r"^video output must end in \.mp4 or \.gif, got '.*'$"):
        write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / name, fps=4, min_size=8)
    assert not (tmp_path / name).exists()
