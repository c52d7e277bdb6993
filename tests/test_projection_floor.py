"""An absolute quality floor for projection (issue 20), on the bundled 64 px StyleGAN-lite.

tests/test_projection.py only asks that a few steps improve on the start, so removing the noise-map
renormalisation, the noise regulariser and the learning-rate schedule all at once still passed it.
Here the target is an image the generator draws exactly (seed 1's z, the model's constant noise maps),
projected with the default options (300 steps, ``lap``), and the result must clear floors set below
what was measured (2-core CPU, torch 2.14; the projection is deterministic on CPU):

| | reconstruction | the latent alone | noise maps: mean square, 1-px autocorrelation |
|---|---|---|---|
| the projector as written | 25.7 dB | 21.4 dB | 1.0000, < 1e-4 |
| no regulariser (weight 0) | 27.8 dB | 19.4 dB | 1.0000, 0.09-0.46 |
| no renormalisation | 26.0 dB | 21.7 dB | 0.40-1.14, < 1e-4 |
| all three removed (constant LR) | 32.6 dB | 20.8 dB | 2.0-64, 0.4-21 |

A PSNR floor on the reconstruction alone cannot catch the crippled projector: it reconstructs
*better*, because the unconstrained noise maps draw the image themselves (StyleGAN2 appendix D: the
regulariser and renormalisation exist to stop exactly that). What it loses is a latent that carries the
image, and noise maps that are still noise. So the test asks for all three: the reconstruction above
23.5 dB, the latent alone (the projected w with the model's constant noise instead of the projected
maps) above 20 dB, and noise maps with zero mean, unit mean square and no 1-px autocorrelation.
About a minute on a loaded 2-core CPU: marked slow.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.projection import ProjectionOptions, project
from app.sampling import to_uint8
from families import load_generator
from progan.metrics.reconstruction import psnr

pytestmark = pytest.mark.slow

BUNDLED = Path(__file__).resolve().parents[1] / "weights" / "stylegan_lite-openmoji"
RECONSTRUCTION_DB, LATENT_DB = 23.5, 20.0     # measured 25.7 and 21.4 dB


@pytest.fixture(scope="module")
def projected():
    generator = load_generator(BUNDLED).eval()
    z = torch.randn(1, generator.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = generator(z, noise_mode="const")                        # [1, 3, 64, 64], reachable exactly
    return generator, target, project(generator, target[0], ProjectionOptions())


def test_reconstruction_clears_the_floor(projected):
    generator, target, projection = projected
    assert psnr(to_uint8(projection.render(generator))[0], to_uint8(target)[0]) >= RECONSTRUCTION_DB


def test_the_latent_alone_redraws_the_image(projected):
    """The projected w with the model's own constant noise, not the projected maps: the image must be in w."""
    generator, target, projection = projected
    with torch.no_grad():
        alone = generator.synthesis(projection.ws(generator), noise_mode="const")
    assert psnr(to_uint8(alone)[0], to_uint8(target)[0]) >= LATENT_DB


def test_noise_maps_stay_unit_white_noise(projected):
    """Zero mean, unit mean square, no correlation between neighbouring pixels (the regulariser drives it
    to ~0; maps left to absorb the image reached 0.09-21)."""
    _, _, projection = projected
    assert [n.shape[-1] for n in projection.noise] == [4, 4, 8, 8, 16, 16, 32, 32, 64, 64]
    for i, n in enumerate(projection.noise):
        assert abs(float(n.mean())) < 1e-3, i
        assert float(n.square().mean()) == pytest.approx(1.0, abs=1e-3), i
        for dim in (2, 3):
            assert abs(float((n * torch.roll(n, 1, dims=dim)).mean())) < 0.02, (i, dim)
