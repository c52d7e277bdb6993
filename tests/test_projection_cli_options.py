"""``python -m app.project`` options whose every test used the default: ``--crop pad``, ``--background``,
``--loss``, ``--seed``; and the progress bar's step count.

The target a pad crop makes is written out here: a 32x16 red picture padded to a 32x32 square on the
background (8 rows above and below), then shrunk to 16 px: rows 0-3 and 12-15 are the background,
rows 4-11 red (compared away from the edges, within a few levels of resampling overshoot; the
default centre crop would give red everywhere, a lost background white). The latent of a run with ``--loss pixel --seed 3`` must be the projector's own result
for those options (``project`` called directly), and differ from the default options' result.
``--seed`` alone decides the random draws: the same seed after a differently seeded global RNG writes the
same latent and noise maps, bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.projection import Projection, ProjectionOptions, image_to_target, project
from app.projection.cli import main as project_main
from app.projection.target import load_target
from families import load_generator

RED, BLUE = (220, 30, 30), (0, 0, 255)


def test_pad_crop_puts_the_whole_image_on_the_background(weights, tmp_path):
    image = tmp_path / "wide.png"
    Image.new("RGB", (32, 16), RED).save(image)
    out = tmp_path / "out"
    assert project_main([str(image), "--weights", str(weights["progan"]), "--out", str(out), "--steps", "1",
                         "--crop", "pad", "--background", "0,0,255"]) == 0
    target = np.asarray(Image.open(out / "target.png").convert("RGB"), dtype=int)
    assert target.shape == (16, 16, 3)
    for rows, colour in ((slice(0, 3), BLUE), (slice(13, 16), BLUE), (slice(5, 11), RED)):
        assert np.abs(target[rows] - np.array(colour)).max() <= 6, (rows, colour)


@pytest.mark.parametrize("name", ["progan", "stylegan_lite"])
def test_loss_and_seed_reach_the_projector(weights, tmp_path, name):
    image = tmp_path / "in.png"
    Image.new("RGB", (16, 16), RED).save(image)
    out = tmp_path / "out"
    assert project_main([str(image), "--weights", str(weights[name]), "--out", str(out), "--steps", "3",
                         "--loss", "pixel", "--seed", "3"]) == 0
    got = Projection.load(out / "latent.safetensors").latent
    generator = load_generator(weights[name])
    target = image_to_target(load_target(image.read_bytes(), 16))
    space = "z" if name == "progan" else "w"

    def latent(**options) -> torch.Tensor:
        return project(generator, target, ProjectionOptions(steps=3, space=space, **options)).latent

    assert torch.allclose(got, latent(loss="pixel", seed=3), atol=1e-6)
    for other in ({"loss": "pixel", "seed": 0}, {"loss": "lap", "seed": 3}):
        assert (got - latent(**other)).abs().max() > 1e-4, other


def test_a_file_exactly_at_the_size_cap_is_read_one_byte_more_refused(weights, tmp_path, monkeypatch):
    """``MAX_FILE_BYTES`` is the largest file the CLI reads: a PNG of exactly that size projects (the image
    is what comes after the cap check), one byte more is refused with the one-line error."""
    import app.projection.cli as cli

    image = tmp_path / "in.png"
    Image.new("RGB", (16, 16), RED).save(image)
    monkeypatch.setattr(cli, "MAX_FILE_BYTES", image.stat().st_size)
    args = ["--weights", str(weights["progan"]), "--out", str(tmp_path / "o"), "--steps", "1"]
    assert project_main([str(image), *args]) == 0
    with open(image, "ab") as handle:
        handle.write(b"\0")
    assert project_main([str(image), *args]) == 2


def test_the_progress_bar_counts_the_steps_asked(weights, tmp_path, monkeypatch):
    """``--steps 4``: the "projecting" bar's total is 4 and it is advanced once per optimiser step, to 4."""
    import tqdm.auto

    bars = []

    class _Bar:  # stands in for tqdm: records what the bar was told
        def __init__(self, total=None, **kwargs):
            self.total, self.n, self.desc = total, 0, kwargs.get("desc")
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def set_postfix(self, **_kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return False

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    image = tmp_path / "in.png"
    Image.new("RGB", (16, 16), RED).save(image)
    assert project_main([str(image), "--weights", str(weights["progan"]), "--out", str(tmp_path / "out"),
                         "--steps", "4"]) == 0
    assert [(bar.desc, bar.total, bar.n) for bar in bars] == [("projecting", 4, 4)]


@pytest.mark.parametrize("name, extra", [("progan", []), ("stylegan_lite", []), ("stylegan_lite", ["--w-plus"])])
def test_the_same_seed_gives_the_same_projection_whatever_the_global_rng(weights, tmp_path, name, extra):
    """``--seed`` alone decides every random draw (z candidates, w samples, initial noise maps, w-noise): two
    runs with ``--seed 3`` after the global RNG was seeded 1 and 2 write the same latent and noise maps bit for
    bit; ``--seed 4`` writes another latent and other maps. The StyleGAN-lite's noise strengths are set to 0.5
    (an untrained one has 0), so its maps also reach the image and the latent."""
    path = weights[name]
    if name == "stylegan_lite":
        generator = load_generator(path)
        with torch.no_grad():
            for layer in generator.synthesis.layers:
                layer.noise.weight.fill_(0.5)
        path = tmp_path / "noisy"
        generator.save_pretrained(path)
    image = tmp_path / "in.png"
    Image.new("RGB", (16, 16), RED).save(image)

    def run(global_seed: int, seed: int) -> Projection:
        torch.manual_seed(global_seed)
        out = tmp_path / f"out-{global_seed}-{seed}"
        assert project_main([str(image), "--weights", str(path), "--out", str(out), "--steps", "2",
                             "--seed", str(seed), *extra]) == 0
        return Projection.load(out / "latent.safetensors")

    first, again, other = run(1, 3), run(2, 3), run(1, 4)
    assert len(first.noise) == (0 if name == "progan" else 2 * len(load_generator(path).config.resolutions))
    assert torch.equal(first.latent, again.latent)
    assert all(torch.equal(a, b) for a, b in zip(first.noise, again.noise, strict=True))
    assert (first.latent - other.latent).abs().max() > 1e-4
    assert all((a - b).abs().max() > 0.1 for a, b in zip(first.noise, other.noise, strict=True))


def test_the_latent_file_records_the_picture_and_the_weights_it_was_projected_with(weights, tmp_path):
    """``app.project`` writes the picture's file name and the weights' path into the latent's metadata:
    ``app.generate --latent`` compares that path with the weights it draws with and notes a mismatch."""
    image = tmp_path / "holiday photo.png"
    Image.new("RGB", (16, 16), RED).save(image)
    out = tmp_path / "out"
    assert project_main([str(image), "--weights", str(weights["progan"]), "--out", str(out), "--steps", "1"]) == 0
    metadata = Projection.load(out / "latent.safetensors").metadata
    assert metadata["image"] == "holiday photo.png"
    assert metadata["weights"] == str(weights["progan"])
