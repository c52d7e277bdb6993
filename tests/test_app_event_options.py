"""The app's events and the CLI honour the options whose other tests used only one value.

The interpolation event was called with lerp / z / no loop only (its page default is slerp) and its
fps never read back, the mixing event and ``generate mix`` with coarse styles only, ``generate grid``
with the default columns and padding, and seeds beside a projected image with one noise mode. Here
each gets another value, and its pixels are compared with a reference built by hand from the
generator: the latent path written out (slerp's formula, lerp in W, the looped path), the styles of
the chosen layers copied, the cells cut at the padded offsets, the synthesis called with each noise,
the GIF frame duration 1000 / fps. Each case also checks that the reference of the default value
differs, so an ignored option cannot pass.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from app.generate import main as generate_main
from app.limits import Limits
from app.models import ModelStore
from app.ui import build_demo
from app.video import write_gif
from image_utils import read_frames
from model_utils import tiny_stylegan

SEEDS = (3, 7)
FRAMES = 5


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    generator = tiny_stylegan()
    generator.save_pretrained(root / "sg")
    demo = build_demo(ModelStore({"sg": str(root / "sg")}), limits=Limits(),
                      output_dir=tmp_path_factory.mktemp("out"))
    return generator, root / "sg", {f.api_name: f.fn for f in demo.fns.values()}


def _z(seed: int, dim: int) -> torch.Tensor:
    """The app's seed contract written out: z drawn on the CPU from a generator seeded with the seed."""
    return torch.randn(1, dim, generator=torch.Generator("cpu").manual_seed(seed))[0]


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    omega = math.acos(float(torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)))
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def _pixels(generator, ws: torch.Tensor) -> np.ndarray:
    """ws ``[N, num_ws, w_dim]`` -> uint8 ``[N, R, R, 3]`` with the constant noise (the app's "fixed")."""
    with torch.no_grad():
        images = generator.synthesis(ws, noise_mode="const")
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _walk(generator, method: str, space: str, loop: bool) -> np.ndarray:
    """Two seeds, FRAMES frames, psi 1: the frames by hand. Without loop the frames sit at t = k / (F - 1)
    from A to B; with loop at 2k / F along A -> B -> A."""
    dim = generator.config.latent_dim
    a, b = _z(SEEDS[0], dim), _z(SEEDS[1], dim)
    with torch.no_grad():
        if space == "w":
            a, b = generator.mapping(a[None])[0], generator.mapping(b[None])[0]
        points = []
        for k in range(FRAMES):
            position = 2 * k / FRAMES if loop else k / (FRAMES - 1)
            start, end, t = (a, b, position) if position <= 1 else (b, a, position - 1)
            points.append(_slerp(start, end, t) if method == "slerp" else start + (end - start) * t)
        w = torch.stack(points) if space == "w" else generator.mapping(torch.stack(points))
    return _pixels(generator, w.unsqueeze(1).repeat(1, generator.num_ws, 1))


@pytest.mark.parametrize("method, space, loop", [("slerp", "z", False), ("lerp", "w", False), ("lerp", "z", True),
                                                 ("lerp", "w", True)])
def test_interpolate_event_draws_the_method_space_and_loop_it_is_given(setup, tmp_path, method, space, loop):
    generator, _weights, events = setup
    _mp4, gif, _status = events["interpolate"]("sg", "3,7", FRAMES, 8, method, space, loop, 1.0, "fixed")
    got = read_frames(gif).astype(int)
    expected = read_frames(write_gif(_walk(generator, method, space, loop), tmp_path / "hand.gif", fps=8)).astype(int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1
    default = _walk(generator, "lerp", "z", False).astype(int)
    assert np.abs(default - _walk(generator, method, space, loop)).max() > 3   # the option ignored would show
    if loop:                                                                   # the loop ignored in this space
        assert np.abs(_walk(generator, method, space, False) - _walk(generator, method, space, True)).max() > 3


def _mixed(generator, rows, cols, layers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and cell pixels by hand: cell (r, c) is column c's w with ``layers`` taken from row r."""
    dim = generator.config.latent_dim
    with torch.no_grad():
        w_rows = generator.mapping(torch.stack([_z(s, dim) for s in rows]))
        w_cols = generator.mapping(torch.stack([_z(s, dim) for s in cols]))
    ws_rows = w_rows.unsqueeze(1).repeat(1, generator.num_ws, 1)
    ws_cols = w_cols.unsqueeze(1).repeat(1, generator.num_ws, 1)
    cells = []
    for r in range(len(rows)):
        mixed = ws_cols.clone()
        mixed[:, layers] = ws_rows[r, layers]
        cells.append(_pixels(generator, mixed))
    return _pixels(generator, ws_rows), _pixels(generator, ws_cols), np.stack(cells)


def _figure(row_images, col_images, cells, size: int) -> np.ndarray:
    """The figure laid out by hand: a white corner, the columns on top, each row's image then its cells."""
    rows, cols = len(row_images), len(col_images)
    out = np.full(((rows + 1) * size, (cols + 1) * size, 3), 255, np.uint8)
    for c in range(cols):
        out[:size, (c + 1) * size:(c + 2) * size] = col_images[c]
    for r in range(rows):
        out[(r + 1) * size:(r + 2) * size, :size] = row_images[r]
        for c in range(cols):
            out[(r + 1) * size:(r + 2) * size, (c + 1) * size:(c + 2) * size] = cells[r, c]
    return out.astype(int)


def test_mix_event_and_cli_copy_the_styles_they_are_given(setup, tmp_path):
    """"middle" in the tiny 4-16 px model is 16 px: layers 4 and 5 come from the row seed, 0-3 from the column."""
    generator, weights, events = setup
    size = generator.config.resolution
    expected = _figure(*_mixed(generator, [1, 2], [5, 6], [4, 5]), size)
    coarse = _figure(*_mixed(generator, [1, 2], [5, 6], [0, 1, 2, 3]), size)
    assert np.abs(expected - coarse)[size:, size:].mean() > 5     # the default's figure differs in the cells
    _shown, download, _status = events["mix"]("sg", "1,2", "5,6", "middle", 1.0, "fixed")
    assert np.abs(np.asarray(Image.open(download).convert("RGB"), dtype=int) - expected).max() <= 1
    out = tmp_path / "mix.png"
    assert generate_main(["mix", "--weights", str(weights), "--rows", "1,2", "--cols", "5,6", "--styles", "middle",
                          "--noise", "fixed", "--out", str(out)]) == 0
    assert np.abs(np.asarray(Image.open(out).convert("RGB"), dtype=int) - expected).max() <= 1


def test_cli_grid_columns_and_padding(setup, tmp_path):
    """``--columns 4 --padding 3`` for 6 seeds: 2 rows of 4, 3 white pixels between cells; each cell is its
    seed's image by hand, at ((i // 4) * 19, (i % 4) * 19); the two unused cells and the gaps are white."""
    generator, weights, _events = setup
    size, seeds = generator.config.resolution, [0, 1, 2, 3, 4, 5]
    out = tmp_path / "grid.png"
    assert generate_main(["--weights", str(weights), "--seeds", "0-5", "--noise", "fixed", "--columns", "4",
                          "--padding", "3", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"), dtype=int)
    assert grid.shape == (2 * size + 3, 4 * size + 3 * 3, 3)
    with torch.no_grad():
        w = generator.mapping(torch.stack([_z(s, generator.config.latent_dim) for s in seeds]))
    images = _pixels(generator, w.unsqueeze(1).repeat(1, generator.num_ws, 1)).astype(int)
    step = size + 3
    for i, image in enumerate(images):
        top, left = (i // 4) * step, (i % 4) * step
        assert np.abs(grid[top:top + size, left:left + size] - image).max() <= 1, i
    assert (grid[size:step] == 255).all() and (grid[:, size:step] == 255).all()
    assert (grid[step:, 2 * step:] == 255).all()


def _frame_ms(path) -> list[int]:
    with Image.open(path) as image:
        durations = []
        for i in range(image.n_frames):
            image.seek(i)
            durations.append(image.info["duration"])
    return durations


def test_interpolate_event_and_cli_play_at_the_fps_they_are_given(setup, tmp_path):
    """fps 4 (not the default 24): every GIF frame lasts 1000 / 4 = 250 ms, in the app and the CLI."""
    _generator, weights, events = setup
    _mp4, gif, _status = events["interpolate"]("sg", "3,7", 3, 4, "lerp", "z", False, 1.0, "fixed")
    assert _frame_ms(gif) == [250] * 3
    out = tmp_path / "walk.gif"
    assert generate_main(["interpolate", "--weights", str(weights), "--seeds", "3,7", "--frames", "3", "--fps", "4",
                          "--min-size", "16", "--out", str(out)]) == 0
    assert _frame_ms(out) == [250] * 3


@pytest.mark.parametrize("noise", ["random", "fixed", "none"])
def test_seeds_beside_a_projected_image_follow_the_noise_mode(noise):
    """A mixing grid whose columns are a projected image and a seed (``app.keys.key_noise``): the image keeps
    its own maps, the seed's column is drawn with the chosen mode (the generator's synthesis called with that noise by hand).
    Noise strengths of 0.5, so the three modes give different pixels."""
    from app.mixing import render_mixing
    from app.projection import Projection
    from app.sampling import seed_noise

    generator = tiny_stylegan()
    with torch.no_grad():
        for layer in generator.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    torch.manual_seed(5)
    maps = [torch.randn(1, 1, r, r) for r in generator.config.resolutions for _ in range(2)]
    projection = Projection("stylegan_lite", "w", torch.randn(1, generator.config.w_dim), noise=maps)
    _rows, cols, _cells = render_mixing(generator, [2], [projection, 9], noise=noise)
    with torch.no_grad():
        ws = generator.mapping(_z(9, generator.config.latent_dim)[None]).unsqueeze(1).repeat(1, generator.num_ws, 1)
        by_mode = {"random": generator.synthesis(ws, noise=seed_noise(generator, [9])),
                   "fixed": generator.synthesis(ws, noise_mode="const"),
                   "none": generator.synthesis(ws, noise_mode="none")}
        own = generator.synthesis(projection.ws(generator), noise=maps)
    pixels = {k: ((v.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0].astype(int)
              for k, v in {**by_mode, "own": own}.items()}
    assert np.abs(cols[1].astype(int) - pixels[noise]).max() <= 1
    assert min(np.abs(pixels[noise] - pixels[other]).max() for other in by_mode if other != noise) > 3
    assert np.abs(cols[0].astype(int) - pixels["own"]).max() <= 1


@pytest.mark.parametrize("rows, cols", [("1", "image,5"), ("image,2", "5"), ("image", "image")])
def test_mix_event_takes_image_in_the_rows_the_columns_or_both(setup, rows, cols):
    """The visitor's projected image (``mine``) may be named among the column seeds, the row seeds or both: each
    place it is named shows its reconstruction (the synthesis of its w with its own maps, by hand), the others a
    seed's image; a projection of another model is refused wherever it is named."""
    import gradio as gr

    from app.projection import Projection

    generator, _weights, events = setup
    size = generator.config.resolution
    torch.manual_seed(11)
    maps = [torch.randn(1, 1, r, r) for r in generator.config.resolutions for _ in range(2)]
    mine = Projection("stylegan_lite", "w", torch.randn(1, generator.config.w_dim), noise=maps,
                      metadata={"model": "sg"})
    with torch.no_grad():
        image = generator.synthesis(mine.latent.unsqueeze(1).repeat(1, generator.num_ws, 1), noise=maps)
    rec = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0].astype(int)
    _shown, download, _status = events["mix"]("sg", rows, cols, "coarse", 1.0, "fixed", None, mine)
    figure = np.asarray(Image.open(download).convert("RGB"), dtype=int)
    row_keys, col_keys = rows.split(","), cols.split(",")
    assert figure.shape == ((len(row_keys) + 1) * size, (len(col_keys) + 1) * size, 3)
    headers = [(key, figure[:size, (c + 1) * size:(c + 2) * size]) for c, key in enumerate(col_keys)]
    headers += [(key, figure[(r + 1) * size:(r + 2) * size, :size]) for r, key in enumerate(row_keys)]
    for key, shown in headers:
        assert (np.abs(shown - rec).max() <= 1) == (key == "image"), key
    other = Projection("stylegan_lite", "w", mine.latent, noise=maps, metadata={"model": "elsewhere"})
    with pytest.raises(gr.Error, match="your image was projected with elsewhere"):
        events["mix"]("sg", rows, cols, "coarse", 1.0, "fixed", None, other)
