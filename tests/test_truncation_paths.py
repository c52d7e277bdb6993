"""Truncation honoured by every path that draws images, not only the sample handler (issue 20).

Truncation (Karras et al. 2019, section 4 / appendix B): ``w' = w_avg + psi (w - w_avg)`` on the style
layers below ``cutoff`` (all when None). The expected pixels are built here by hand from the
generator's mapping and synthesis -- the truncation formula written out, not ``generator.truncate``
-- and compared with
- ``app.interpolation.render_interpolation`` (in z and in W) and ``app.mixing.render_mixing``
  (rows, columns and every mixed cell), for several psi and cutoffs;
- the app's interpolation and mixing events (``app/ui.py``, which take psi but no cutoff) and the
  CLI's ``interpolate`` and ``mix`` (``--psi``, ``--cutoff``): psi = 0 makes every frame and every
  cell w_avg's image, psi = 1 does not; psi > 1 (the app allows up to 2) extrapolates away from w_avg;
- the Generate event (``sample``: psi and the Truncation cutoff slider): its images are the hand-built
  truncation at that cutoff, far from the all-layers truncation a lost cutoff would give;
- the Edit event (``edit``: psi slider, every strength at 0): the hand-built truncation of the seed.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.generate import main as generate_main
from app.interpolation import keyframe_path, render_interpolation
from app.limits import Limits
from app.mixing import render_mixing, style_layers
from app.models import ModelStore
from app.sampling import seed_latents
from app.ui import build_demo
from app.ui_edit import SLIDERS
from image_utils import read_frames
from model_utils import tiny_stylegan

KEYS = [3, 7, 11]


@pytest.fixture(scope="module")
def generator():
    return tiny_stylegan(w_avg_scale=2.0)


def _by_hand(generator, w: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """``w [N, w_dim]`` -> truncated ws ``[N, num_ws, w_dim]``, the formula written out per layer."""
    ws = w.unsqueeze(1).repeat(1, generator.num_ws, 1)
    w_avg = generator.w_avg
    for layer in range(generator.num_ws if cutoff is None else cutoff):
        ws[:, layer] = w_avg + psi * (ws[:, layer] - w_avg)
    return ws


def _pixels(generator, ws: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        images = generator.synthesis(ws, noise_mode="const")                 # the app's "fixed" noise
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # rounding at the uint8 boundary


@pytest.mark.parametrize("space", ["z", "w"])
@pytest.mark.parametrize("psi,cutoff", [(0.5, None), (0.0, 2), (-0.5, 4), (1.0, None), (1.5, None)])
def test_interpolation_frames_are_the_truncated_walk(generator, space, psi, cutoff):
    clip = render_interpolation(generator, KEYS, frames=6, space=space, method="lerp", psi=psi, cutoff=cutoff,
                                noise="fixed")
    z = seed_latents(KEYS, generator.config.latent_dim)
    with torch.no_grad():
        w = generator.mapping(keyframe_path(z, 6)) if space == "z" else keyframe_path(generator.mapping(z), 6)
    _close(clip, _pixels(generator, _by_hand(generator, w, psi, cutoff)))


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_at_psi_zero_is_one_image(generator, space):
    clip = render_interpolation(generator, KEYS, frames=5, space=space, psi=0.0, noise="fixed")
    assert all(np.array_equal(clip[0], frame) for frame in clip[1:])
    assert len({frame.tobytes() for frame in render_interpolation(generator, KEYS, frames=5, space=space,
                                                                  psi=1.0, noise="fixed")}) == 5


@pytest.mark.parametrize("psi,cutoff", [(0.5, None), (0.0, 2), (-0.5, 4), (1.0, None), (1.5, None)])
def test_mixing_rows_columns_and_cells_are_truncated(generator, psi, cutoff):
    rows, cols = [1, 2], [5, 6, 8]
    row_images, col_images, cells = render_mixing(generator, rows, cols, styles="coarse", psi=psi, cutoff=cutoff,
                                                  noise="fixed")
    latent = generator.config.latent_dim
    with torch.no_grad():
        ws_rows = _by_hand(generator, generator.mapping(seed_latents(rows, latent)), psi, cutoff)
        ws_cols = _by_hand(generator, generator.mapping(seed_latents(cols, latent)), psi, cutoff)
    _close(row_images, _pixels(generator, ws_rows))
    _close(col_images, _pixels(generator, ws_cols))
    layers = style_layers(generator.config, "coarse")
    for r in range(len(rows)):
        mixed = ws_cols.clone()
        mixed[:, layers] = ws_rows[r, layers]  # column j's styles, row r's on the coarse layers
        _close(cells[r], _pixels(generator, mixed))


def test_mixing_at_psi_zero_is_one_image(generator):
    row_images, col_images, cells = render_mixing(generator, [1, 2], [5, 6], psi=0.0, noise="fixed")
    every = [*row_images, *col_images, *cells.reshape(-1, *cells.shape[2:])]
    assert all(np.array_equal(every[0], image) for image in every[1:])


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    tiny_stylegan(w_avg_scale=2.0).save_pretrained(root / "sg")
    store = ModelStore({"sg": str(root / "sg")})
    demo = build_demo(store, limits=Limits(), output_dir=tmp_path_factory.mktemp("app-out"))
    return root, {f.api_name: f.fn for f in demo.fns.values()}


@pytest.mark.parametrize("psi,cutoff", [(0.5, 2), (0.0, 2), (-0.5, 4), (1.8, 3)])  # psi > 1 extrapolates
def test_sample_event_honours_the_cutoff_slider(events, generator, psi, cutoff):
    _, fns = events
    seeds = [3, 7, 11]
    gallery, _grid, _status = fns["sample"]("sg", "3,7,11", psi, cutoff, "fixed")
    shown = np.stack([np.asarray(image) for image, _caption in gallery]).astype(int)
    with torch.no_grad():
        w = generator.mapping(seed_latents(seeds, generator.config.latent_dim))
    _close(shown, _pixels(generator, _by_hand(generator, w, psi, cutoff)))
    every_layer = _pixels(generator, _by_hand(generator, w, psi, None)).astype(int)   # the cutoff ignored
    assert np.abs(shown - every_layer).mean() > 10, np.abs(shown - every_layer).mean()
    if psi == 0.0:  # only the layers below the cutoff are w_avg's: the seeds still differ
        assert len({image.tobytes() for image, _ in gallery}) == len(seeds)


@pytest.mark.parametrize("psi", [0.5, 0.0, 1.8])
def test_edit_event_honours_psi(events, generator, psi):
    """The Edit tab's psi slider reaches the drawing: with every strength at 0 the edited image is the
    seed's hand-built truncation at that psi, far from the untruncated image a lost psi would give."""
    _, fns = events
    _shown, _status, native = fns["edit"]("sg", "7", "all", psi, "fixed", *(0.0,) * SLIDERS, None)
    with torch.no_grad():
        w = generator.mapping(seed_latents([7], generator.config.latent_dim))
    _close(native[None], _pixels(generator, _by_hand(generator, w, psi, None)))
    untruncated = _pixels(generator, _by_hand(generator, w, 1.0, None))[0].astype(int)
    assert np.abs(native.astype(int) - untruncated).mean() > 10, np.abs(native.astype(int) - untruncated).mean()


def test_interpolate_event_honours_psi(events):
    _, fns = events
    for psi, distinct in ((0.0, 1), (1.0, 4)):
        _mp4, gif, _status = fns["interpolate"]("sg", "3,7", 4, 8, "lerp", "z", False, psi, "fixed")
        assert len({frame.tobytes() for frame in read_frames(gif)}) == distinct, psi


def test_mix_event_honours_psi(events):
    _, fns = events
    for psi, one in ((0.0, True), (1.0, False)):
        _shown, download, _status = fns["mix"]("sg", "1,2", "5,6", "coarse", psi, "fixed")
        grid = np.asarray(Image.open(download).convert("RGB"))  # (rows + 1) x (cols + 1) cells of 16 px
        cells = [grid[i:i + 16, j:j + 16] for i in range(0, 48, 16) for j in range(0, 48, 16)][1:]  # no corner
        assert (len({cell.tobytes() for cell in cells}) == 1) == one, psi


@pytest.mark.parametrize("cutoff", [None, 2])
def test_cli_interpolate_and_mix_honour_psi_and_cutoff(events, tmp_path, generator, cutoff):
    root, _ = events
    common = ["--weights", str(root / "sg"), "--psi", "0.5", "--noise", "fixed"]
    common += [] if cutoff is None else ["--cutoff", str(cutoff)]
    size = generator.config.resolution
    walk = tmp_path / "walk.gif"
    assert generate_main(["interpolate", *common, "--seeds", "3,7,11", "--frames", "6", "--out", str(walk)]) == 0
    z = seed_latents(KEYS, generator.config.latent_dim)
    frames = read_frames(walk).astype(int)
    frames = frames[:, ::frames.shape[1] // size, ::frames.shape[1] // size]   # the GIF is enlarged (nearest)

    def distance(psi: float, cut: int | None) -> float:  # mean |level| difference; GIF palettes cost ~3-6
        with torch.no_grad():
            w = generator.mapping(keyframe_path(z, 6))
        return float(np.abs(frames - _pixels(generator, _by_hand(generator, w, psi, cut)).astype(int)).mean())

    assert distance(0.5, cutoff) < 10
    assert distance(1.0, None) > 30                                   # psi ignored: measured ~80
    if cutoff is not None:
        assert distance(0.5, None) > 30                               # cutoff ignored: measured ~90
    figure = tmp_path / "mix.png"
    assert generate_main(["mix", *common, "--rows", "1,2", "--cols", "5,6", "--styles", "coarse",
                          "--out", str(figure)]) == 0
    grid = np.asarray(Image.open(figure).convert("RGB"))
    latent = generator.config.latent_dim
    with torch.no_grad():
        ws_rows = _by_hand(generator, generator.mapping(seed_latents([1, 2], latent)), 0.5, cutoff)
        ws_cols = _by_hand(generator, generator.mapping(seed_latents([5, 6], latent)), 0.5, cutoff)
    _close(grid[:size, size:], np.concatenate(list(_pixels(generator, ws_cols)), axis=1))   # top: columns
    _close(grid[size:, :size], np.concatenate(list(_pixels(generator, ws_rows)), axis=0))   # left: rows
