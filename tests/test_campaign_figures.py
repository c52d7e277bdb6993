"""scripts/campaign_figures.py: the truncation figure's columns are psi 1 -> 0, one row per seed."""
from __future__ import annotations

import numpy as np
from PIL import Image

from app.sampling import generate_images
from families import load_generator
from script_utils import load_script


def test_truncation_figure_columns_are_the_psis_and_the_last_is_the_average_image(weights, tmp_path, capsys):
    """16 px cells with 2 px gaps, enlarged 8x (to 128 px): cell (seed r, column c) is seed r drawn at
    psi = 1, 0.85, 0.7, 0.5, 0.25, 0 (fixed noise). At psi 0 every seed gives w_avg's image, so the last
    column is one picture six times, while the psi-1 column shows six different seeds."""
    script = load_script("campaign_figures")
    assert script.main(["--weights", str(weights["stylegan_lite"]), "--out", str(tmp_path)]) == 0
    figure = np.asarray(Image.open(tmp_path / "truncation.png").convert("RGB"))
    step = (16 + 2) * 8
    assert figure.shape == (6 * step - 16, 6 * step - 16, 3)
    cell = {(r, c): figure[r * step:r * step + 128:8, c * step:c * step + 128:8] for r in range(6) for c in range(6)}
    g = load_generator(str(weights["stylegan_lite"]), progress=False)
    for c, psi in enumerate((1.0, 0.85, 0.7, 0.5, 0.25, 0.0)):
        np.testing.assert_array_equal(np.stack([cell[r, c] for r in range(6)]),
                                      generate_images(g, list(range(6)), psi=psi, noise="fixed"), err_msg=f"psi {psi}")
    assert all(np.array_equal(cell[r, 5], cell[0, 5]) for r in range(6))
    assert len({cell[r, 0].tobytes() for r in range(6)}) == 6
