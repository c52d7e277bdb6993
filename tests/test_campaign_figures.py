"""scripts/campaign_figures.py: the truncation figure's columns are psi 1 -> 0, one row per seed."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.sampling import generate_images
from families import load_generator
from script_utils import SCRIPTS, load_script


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


def _grids(run, colours):
    (run / "samples").mkdir(parents=True)
    for kimg, colour in colours.items():
        Image.new("RGB", (4, 4), colour).save(run / "samples" / f"grid-{kimg:09.3f}kimg.png")


def test_the_training_strip_shows_the_grid_nearest_each_kimg_in_the_order_asked(tmp_path):
    """Grids saved at 0 (red), 50 (green) and 100 kimg (blue); asked for 40, 100, 0: the nearest grids are
    green, blue, red, side by side as 16 px cells 8 px apart, with a label strip 22 px high under them."""
    script = load_script("campaign_figures")
    _grids(tmp_path / "run", {0.0: (255, 0, 0), 50.0: (0, 255, 0), 100.0: (0, 0, 255)})
    script.training_strip(tmp_path / "run", [40.0, 100.0, 0.0], tmp_path / "strip.png", cell=16)
    strip = np.asarray(Image.open(tmp_path / "strip.png").convert("RGB"))
    assert strip.shape == (16 + 22, 3 * (16 + 8) - 8, 3)
    for i, colour in enumerate(((0, 255, 0), (0, 0, 255), (255, 0, 0))):
        assert (strip[:16, i * 24:i * 24 + 16] == colour).all(), i
        assert (strip[16:, i * 24:i * 24 + 16] != 255).any(), f"no label under cell {i}"
    assert (strip[:16, 16:24] == 255).all() and (strip[:16, 40:48] == 255).all()   # the white gaps


def test_the_training_strip_refuses_a_run_without_sample_grids(tmp_path):
    script = load_script("campaign_figures")
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="no sample grids in"):
        script.training_strip(tmp_path / "run", [10.0], tmp_path / "strip.png")
    assert not (tmp_path / "strip.png").exists()


def test_the_command_with_run_writes_the_training_strip_at_each_listed_kimg(weights, tmp_path, capsys, monkeypatch):
    """``--run DIR --kimg 0,100``, run as a command: training.png has one 256 px cell per listed kimg (two:
    the empty item after a trailing comma is no kimg), a ProGAN writes no StyleGAN figures, and the script
    exits with status 0."""
    import runpy
    import sys

    _grids(tmp_path / "run", {0.0: (255, 0, 0), 100.0: (0, 0, 255)})
    monkeypatch.setattr(sys, "argv", ["campaign_figures.py", "--weights", str(weights["progan"]),
                                      "--out", str(tmp_path / "out"), "--run", str(tmp_path / "run"), "--kimg", "0, 100,"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPTS / "campaign_figures.py"), run_name="__main__")
    assert exit_.value.code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["samples.png", "training.png"]
    strip = np.asarray(Image.open(tmp_path / "out" / "training.png").convert("RGB"))
    assert strip.shape == (256 + 22, 2 * (256 + 8) - 8, 3)
    assert (strip[:256, :256] == (255, 0, 0)).all() and (strip[:256, 264:] == (0, 0, 255)).all()
    assert "wrote samples.png, training.png" in capsys.readouterr().out
