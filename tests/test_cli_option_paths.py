"""CLI options away from their defaults, each checked against pixels built here by hand from the model's parts
(red-team pass R10): ``interpolate --space/--method/--min-size``, ``mix --cutoff`` with ``--psi``,
``edit --psi``, ``app.project --w-plus``; ``mix --padding`` and the progress bar of a batched walk (boundary sweep); ``--device`` (kwarg sweep).

The fixture model has a non-zero ``w_avg`` (a fresh model's is 0, so truncation would be the identity around
it and a lost psi or cutoff could not show) and a random constant input. Seed s draws z from
``torch.Generator().manual_seed(s)`` (``app.sampling``); videos and mixing default to the constant noise.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from app.generate import main as generate_main
from families import FAMILIES, load_generator
from image_utils import read_frames

R = 16  # tiny preset's resolution


@pytest.fixture(scope="module")
def styled(tmp_path_factory):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(3)
    generator = family.generator_cls(family.presets["tiny"])
    with torch.no_grad():
        generator.synthesis.input.weight.normal_()
        generator.w_avg.normal_(0.0, 2.0)
    path = tmp_path_factory.mktemp("styled")
    generator.save_pretrained(path)
    return path, load_generator(str(path), progress=False)


def _z(seed: int, dim: int) -> torch.Tensor:
    return torch.randn(1, dim, generator=torch.Generator("cpu").manual_seed(seed))


def _ws(g, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
    """Mapped and truncated by hand: w' = w_avg + psi (w - w_avg) on layers < cutoff (StyleGAN appendix B)."""
    ws = g.mapping(z).unsqueeze(1).repeat(1, g.num_ws, 1)
    last = g.num_ws if cutoff is None else cutoff
    ws[:, :last] = g.w_avg + psi * (ws[:, :last] - g.w_avg)
    return ws


@torch.no_grad()
def _image(g, ws: torch.Tensor) -> np.ndarray:
    image = g.synthesis(ws, noise_mode="const")
    return ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0].astype(int)


def _png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=int)


def test_interpolate_space_and_method_reach_the_walk(styled, tmp_path):
    """Four frames through seeds 1, 2: frame 1 is the point 1/3 of the way in the chosen space and method
    (not the halfway point: the mapping's pixel norm makes z's lerp and slerp midpoints the same picture)."""
    path, g = styled
    z1, z2 = _z(1, g.config.latent_dim), _z(2, g.config.latent_dim)
    with torch.no_grad():
        w_lerp = _image(g, (2 * _ws(g, z1) + _ws(g, z2)) / 3)
        z_lerp = _image(g, _ws(g, (2 * z1 + z2) / 3))
        omega = math.acos(float((z1 / z1.norm() * z2 / z2.norm()).sum()))
        z_slerp = _image(g, _ws(g, (math.sin(2 * omega / 3) * z1 + math.sin(omega / 3) * z2) / math.sin(omega)))
    expected = {("w", "lerp"): w_lerp, ("z", "lerp"): z_lerp, ("z", "slerp"): z_slerp}
    for (space, method), want in expected.items():
        out = tmp_path / f"{space}-{method}.gif"
        assert generate_main(["interpolate", "--weights", str(path), "--seeds", "1,2", "--frames", "4", "--space",
                              space, "--method", method, "--min-size", "16", "--out", str(out)]) == 0
        frame = read_frames(out)[1].astype(int)
        errors = {key: np.abs(frame - other).mean() for key, other in expected.items()}
        assert errors[(space, method)] < 2.0, (space, method, errors)               # GIF palette: a level or so
        assert all(e > errors[(space, method)] + 1.0 for k, e in errors.items() if k != (space, method)), errors


def test_interpolate_min_size_enlarges_by_the_smallest_integer_factor(styled, tmp_path):
    path, _ = styled
    for min_size, side in ((16, 16), (40, 48), (100, 112)):                       # factor ceil(min / 16)
        out = tmp_path / f"walk{min_size}.gif"
        assert generate_main(["interpolate", "--weights", str(path), "--seeds", "1,2", "--frames", "2",
                              "--min-size", str(min_size), "--out", str(out)]) == 0
        with Image.open(out) as image:
            assert image.size == (side, side), min_size


def test_mix_truncates_with_psi_below_the_cutoff_only(styled, tmp_path):
    """``mix --psi 0.5 --cutoff 1``: the column source (seed 2, top row) is truncated on layer 0 alone; the
    row source (seed 1, left column) likewise. Truncating every layer would give other pixels."""
    path, g = styled
    out = tmp_path / "mix.png"
    assert generate_main(["mix", "--weights", str(path), "--rows", "1", "--cols", "2", "--psi", "0.5",
                          "--cutoff", "1", "--out", str(out)]) == 0
    figure = _png(out)
    assert figure.shape == (2 * R, 2 * R, 3)
    column, row = figure[:R, R:], figure[R:, :R]
    with torch.no_grad():
        for tile, seed in ((column, 2), (row, 1)):
            z = _z(seed, g.config.latent_dim)
            assert np.abs(tile - _image(g, _ws(g, z, 0.5, 1))).max() <= 1, seed
            assert np.abs(tile - _image(g, _ws(g, z, 0.5))).max() > 3, seed          # cutoff lost
            assert np.abs(tile - _image(g, _ws(g, z))).max() > 3, seed               # psi lost


def test_edit_psi_truncates_the_edited_sample(styled, tmp_path):
    """``edit --psi 0.5``: the strength-0 column (middle of 3) is seed 0 truncated around w_avg."""
    path, g = styled
    out = tmp_path / "edit.png"
    assert generate_main(["edit", "--weights", str(path), "--seeds", "0", "--k", "2", "--directions", "0",
                          "--strength", "2", "--steps", "3", "--psi", "0.5", "--out", str(out)]) == 0
    cell_size, gap, left, top = 64, 2, 92, 16                                     # app.edit.edit_grid's layout
    grid = _png(out)
    x = left + (cell_size + gap)
    cell = grid[top:top + cell_size:4, x:x + cell_size:4]
    z = _z(0, g.config.latent_dim)
    with torch.no_grad():
        assert np.abs(cell - _image(g, _ws(g, z, 0.5))).max() <= 1
        assert np.abs(cell - _image(g, _ws(g, z))).max() > 3                        # psi lost


def test_project_w_plus_writes_one_w_per_layer(styled, tmp_path):
    from app.projection import Projection
    from app.projection.cli import main as project_main

    path, g = styled
    image = tmp_path / "in.png"
    Image.new("RGB", (R, R), (200, 40, 40)).save(image)
    for flag, space, shape in (([], "w", (1, g.config.w_dim)), (["--w-plus"], "w+", (1, g.num_ws, g.config.w_dim))):
        out = tmp_path / space
        assert project_main([str(image), "--weights", str(path), "--out", str(out), "--steps", "1", *flag]) == 0
        projection = Projection.load(out / "latent.safetensors")
        assert projection.space == space and tuple(projection.latent.shape) == shape, (flag, projection.latent.shape)


def test_grid_columns_up_to_the_number_of_seeds(styled, tmp_path, capsys):
    """``--columns`` may be anything from 1 to the number of images: 4 seeds in 4 columns is one row
    (the bound itself is allowed), 5 columns is one ``error:`` line and no file."""
    path, _ = styled
    for columns, size in (("4", (4 * R, R)), ("1", (R, 4 * R))):
        out = tmp_path / f"grid{columns}.png"
        assert generate_main(["--weights", str(path), "--seeds", "0-3", "--columns", columns, "--out", str(out)]) == 0
        with Image.open(out) as image:
            assert image.size == size, columns
    capsys.readouterr()
    assert generate_main(["--weights", str(path), "--seeds", "0-3", "--columns", "5",
                          "--out", str(tmp_path / "five.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--columns" in err[0]
    assert not (tmp_path / "five.png").exists()


def test_mix_padding_puts_white_gaps_between_the_cells(styled, tmp_path):
    """``mix --padding 2``: 2 white pixels between the figure's tiles, each source at its padded offset
    (column sources on top from x = R + 2, the row source on the left at y = R + 2), drawn here by hand;
    a negative padding is none."""
    path, g = styled
    out = tmp_path / "mix.png"
    assert generate_main(["mix", "--weights", str(path), "--rows", "1", "--cols", "2,5", "--psi", "1",
                          "--padding", "2", "--out", str(out)]) == 0
    figure, step = _png(out), R + 2
    assert figure.shape == (R + step, R + 2 * step, 3)
    for tile, seed in ((figure[:R, step:step + R], 2), (figure[:R, 2 * step:], 5), (figure[step:, :R], 1)):
        assert np.abs(tile - _image(g, _ws(g, _z(seed, g.config.latent_dim)))).max() <= 1, seed
    assert (figure[R:step] == 255).all() and (figure[:, R:step] == 255).all()
    assert (figure[:, step + R:2 * step] == 255).all()
    assert generate_main(["mix", "--weights", str(path), "--rows", "1", "--cols", "2,5", "--padding", "-3",
                          "--out", str(out)]) == 0
    assert _png(out).shape == (2 * R, 3 * R, 3)


def test_interpolate_progress_counts_frames_per_batch_and_closes_the_bar_at_the_end(styled, tmp_path, monkeypatch):
    """``interpolate --frames 5 --batch-size 2``: the bar sees 2, 4, then 5 of 5 frames done (one update per
    batch, the last batch short), and is closed once, when all 5 are done (not left open below the summary)."""
    import tqdm.auto

    bars = []

    class _Bar:  # stands in for tqdm: records what the bar was told
        def __init__(self, total=0, **_kwargs):
            self.total, self.n, self.seen, self.closed_at = total, 0, [], None
            bars.append(self)

        def update(self, k):
            self.n += k
            self.seen.append((self.n, self.total))

        def close(self):
            assert self.closed_at is None, "closed twice"
            self.closed_at = self.n

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    path, _ = styled
    assert generate_main(["interpolate", "--weights", str(path), "--seeds", "1,2", "--frames", "5", "--batch-size",
                          "2", "--min-size", "16", "--out", str(tmp_path / "walk.gif")]) == 0
    assert len(bars) == 1
    assert bars[0].seen == [(2, 5), (4, 5), (5, 5)] and bars[0].closed_at == 5


def test_device_is_where_the_generator_is_loaded(styled, tmp_path, monkeypatch):
    """``--device meta`` loads the generator on the meta device (the only device besides the CPU that a
    CPU-only test can name); without it, on the default device (made the CPU). The spy then hands over a copy
    loaded on the CPU so that the grid can still be drawn, and the grid is seed 0's image either way."""
    import app.models
    import families

    monkeypatch.setattr(app.models, "default_device", lambda: "cpu")   # as on a machine without CUDA
    path, g = styled
    loaded, real = [], families.load_generator

    def spy(source, **kwargs):
        loaded.append(next(real(source, **kwargs).parameters()).device.type)
        return real(source, **{**kwargs, "device": "cpu"})

    monkeypatch.setattr(families, "load_generator", spy)
    for flags in (["--device", "meta"], []):
        out = tmp_path / f"grid{len(flags)}.png"
        assert generate_main(["grid", "--weights", str(path), "--seeds", "0", "--noise", "fixed", *flags,
                              "--out", str(out)]) == 0
        assert np.abs(_png(out) - _image(g, _ws(g, _z(0, g.config.latent_dim)))).max() <= 1
    assert loaded == ["meta", "cpu"]


@pytest.mark.parametrize("flag, value, message, listed", [
    ("--noise", "bogus", "argument --noise: invalid choice: 'bogus' (choose from ", ("random", "fixed", "none")),
    ("--method", "bogus", "argument --method: invalid choice: 'bogus' (choose from ", ("lerp", "slerp")),
    ("--fps", "12.5", "argument --fps: invalid int value: '12.5'", ()),
])
def test_interpolate_refuses_a_bad_noise_method_or_fps_before_loading_anything(styled, tmp_path, capsys, flag, value,
                                                                               message, listed):
    """A value outside ``--noise``/``--method``'s choices or a fractional ``--fps`` is argparse's usage error
    (exit 2, naming the choices), before any model is loaded; ``--help`` lists the choices."""
    path, _ = styled
    with pytest.raises(SystemExit) as exit_info:
        generate_main(["interpolate", "--weights", str(path), flag, value, "--out", str(tmp_path / "walk.gif")])
    err = capsys.readouterr().err.strip().splitlines()[-1]         # the quoting of the choices varies by Python
    assert exit_info.value.code == 2 and message in err and all(choice in err for choice in listed), err
    with pytest.raises(SystemExit):
        generate_main(["interpolate", "--help"])
    help_text = capsys.readouterr().out
    assert "{random,fixed,none}" in help_text and "{lerp,slerp}" in help_text
