"""``python -m app.generate edit`` with ``--strength``, ``--steps``, ``--layers``, ``--k`` and ``--directions``
away from their defaults; the one other CLI test checks only the strength-0 column.

The cell of seed 0, direction 1, strength +2 (the last of 3 columns from -2 to +2) must be the
image of w moved by 2 * sigma_1 * n_1 on layers 0-3 only, written out here from the directions
(cached for those layers and k) and synthesised with the constant noise. The grid's shape follows
--steps and --directions; the directions of all layers, or strength 3, would give other pixels.
(--k only sets how many directions are computed; the top ones are the same, so it cannot show here.)
``app.edit.edit_grid``'s layout (where each cell sits, enlarged by whole pixels) is checked last, with stubbed images.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from app.directions import cached_directions
from app.generate import main as generate_main
from families import load_generator

CELL, GAP, LEFT, TOP = 64, 2, 92, 16  # tiny's 16 px cells shown at 64 px (app.edit.edit_grid's layout)


def _moved(generator, directions, strength: float, first: int, last: int) -> np.ndarray:
    z = torch.randn(1, generator.config.latent_dim, generator=torch.Generator("cpu").manual_seed(0))
    with torch.no_grad():
        ws = generator.mapping(z).unsqueeze(1).repeat(1, generator.num_ws, 1)
        ws[:, first:last + 1] += strength * directions.sigma[1] * directions.vectors[1]
        image = generator.synthesis(ws, noise_mode="const")
    return ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0].astype(int)


def test_edit_cli_moves_the_chosen_direction_by_the_chosen_strength_on_the_chosen_layers(weights, tmp_path):
    generator = load_generator(weights["stylegan_lite"], progress=False)
    out = tmp_path / "edit.png"
    assert generate_main(["edit", "--weights", str(weights["stylegan_lite"]), "--seeds", "0", "--layers", "0-3",
                          "--k", "4", "--directions", "0-1", "--strength", "2", "--steps", "3", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"), dtype=int)
    assert grid.shape == (TOP + 2 * (CELL + GAP), LEFT + 3 * (CELL + GAP), 3)     # 2 directions x 3 strengths
    y, x = TOP + (CELL + GAP), LEFT + 2 * (CELL + GAP)                           # row: direction 1; column: +2
    cell = grid[y:y + CELL:4, x:x + CELL:4]
    directions = cached_directions(generator, layers="0-3", k=4)
    expected = _moved(generator, directions, 2.0, 0, 3)
    assert np.abs(cell - expected).max() <= 1
    assert np.abs(cell - _moved(generator, directions, 3.0, 0, 3)).max() > 3                  # strength lost
    every_layer = cached_directions(generator, layers="all", k=4)
    assert np.abs(cell - _moved(generator, every_layer, 2.0, 0, generator.num_ws - 1)).max() > 3  # layers lost


def test_edit_grid_places_each_cell_enlarged_by_whole_pixels(monkeypatch):
    """app.edit.edit_grid's layout, with the images stubbed by asymmetric random 16 px pictures: cell (row i,
    column c) starts at (92 + c * (64 + 2), 16 + i * (64 + 2)) and is the picture repeated 4x4 (nearest:
    every generated pixel a crisp 4x4 square, no blending); rows run seed-major, then direction."""
    import app.edit
    from app.edit import edit_grid

    rng = np.random.default_rng(7)
    drawn = {}

    def fake_edit_images(generator, key, directions, table, *, psi, noise):
        d = len(table[0]) - 1                                          # the direction that moves
        drawn[key, d] = rng.integers(0, 256, (len(table), 16, 16, 3), dtype=np.uint8)
        return drawn[key, d]

    class Config:
        resolution = 16

    class Generator:
        config = Config()

    monkeypatch.setattr(app.edit, "edit_images", fake_edit_images)
    grid = np.asarray(edit_grid(Generator(), [5, 9], None, [0, 2], [-1.0, 0.0, 1.0]))
    assert grid.shape == (16 + 4 * 66, 92 + 3 * 66, 3)
    for i, (key, d) in enumerate([(5, 0), (5, 2), (9, 0), (9, 2)]):
        for c in range(3):
            y, x = 16 + i * 66, 92 + c * 66
            expected = drawn[key, d][c].repeat(4, axis=0).repeat(4, axis=1)
            np.testing.assert_array_equal(grid[y:y + 64, x:x + 64], expected, err_msg=f"row {i} column {c}")
            assert (grid[y:y + 64, x + 64:x + 66] == 255).all()          # the white gap after each cell


def test_edit_grid_labels_each_column_with_its_strength_above_it(monkeypatch):
    """The header above column c reads "<strength:+g> sigma", written 2 px into that column's 66 px
    (cell + gap) span: each span equals the label drawn alone at (2, 2) on a white 66 x 16 strip, and the
    92 px left margin above the row labels stays blank."""
    from PIL import ImageDraw

    import app.edit
    from app.edit import edit_grid

    class Config:
        resolution = 16

    class Generator:
        config = Config()

    monkeypatch.setattr(app.edit, "edit_images", lambda g, key, directions, table, *, psi, noise:
                        np.zeros((len(table), 16, 16, 3), dtype=np.uint8))
    strengths = [-2.0, 0.0, 1.5]
    header = np.asarray(edit_grid(Generator(), [5], None, [0], strengths))[:TOP]
    assert (header[:, :LEFT] == 255).all()
    for c, s in enumerate(strengths):
        strip = Image.new("RGB", (CELL + GAP, TOP), "white")
        ImageDraw.Draw(strip).text((2, 2), f"{s:+g} sigma", fill="black")
        assert np.asarray(strip).min() < 128                                 # the label has ink
        x = LEFT + c * (CELL + GAP)
        np.testing.assert_array_equal(header[:, x:x + CELL + GAP], np.asarray(strip), err_msg=f"column {c}")
