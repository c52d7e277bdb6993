"""A ``Projection`` renders with its own optimised noise maps, before and after a save + load.

The projector optimises a latent *and* one noise map per StyleGAN-lite layer; the reconstruction is
the synthesis network run on both. An untrained tiny model has every noise strength at 0, so any
noise (its own, the model's constant maps, fresh random ones) gives the same image and a render that
drops the projection's maps goes unseen. Here the strengths are set non-zero by hand, and the
expected image is built in the test: the styles from the latent (w repeated on every layer with
``expand``, w+ as it is) and ``generator.synthesis(ws, noise=projection.noise)``. It must differ from
the render with the model's constant noise maps. ProGAN has no noise: its projection renders
``generator(z)``.
"""
from __future__ import annotations

import pytest
import torch

from app.projection import Projection, ProjectionOptions, project
from families import FAMILIES
from stylegan_lite.layers import NoiseInjection


def _noisy_stylegan():
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    layers = [mod for mod in g.modules() if isinstance(mod, NoiseInjection)]
    assert layers and all(float(mod.weight.detach().abs().max()) == 0.0 for mod in layers)  # why we set them here
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in layers:
            mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=gen))  # per-channel strengths in [0.5, 1.5)
    return g


@pytest.mark.parametrize("space", ["w", "w+"])
def test_a_projection_renders_with_its_own_noise_maps_and_reads_back_the_same_image(tmp_path, space):
    g = _noisy_stylegan()
    target = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    projection = project(g, target, ProjectionOptions(steps=3, space=space, w_avg_samples=100))
    assert len(projection.noise) == 2 * len(g.config.resolutions)
    latent = projection.latent
    ws = latent.unsqueeze(1).expand(1, g.num_ws, g.config.w_dim) if space == "w" else latent  # [1, num_ws, w_dim]
    with torch.no_grad():
        expected = g.synthesis(ws, noise=[n.clone() for n in projection.noise])
        const = g.synthesis(ws, noise_mode="const")
    rendered = projection.render(g)
    assert torch.equal(rendered, expected)
    assert (rendered - const).abs().max().item() > 0.1           # the model's constant maps give another image
    again = Projection.load(projection.save(tmp_path / "latent.safetensors"))
    assert torch.equal(again.render(g), rendered)                # bit for bit after save + load
    assert torch.equal(again.render(g), again.render(g))         # and no fresh random noise per call


def test_a_progan_projection_renders_from_z():
    family = FAMILIES["progan"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    target = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    projection = project(g, target, ProjectionOptions(steps=2, z_candidates=4))
    assert projection.space == "z" and projection.noise == []
    with torch.no_grad():
        expected = g(projection.latent.clone())
    assert torch.equal(projection.render(g), expected)
