"""The resolution the product is named for: one full training step at paper-1024, both families, on CPU.

ProGAN table 2 / StyleGAN appendix C sizes (23M-26M parameters per network). One D step with the
family's penalty (WGAN-GP for ProGAN, R1 for StyleGAN), one G step (with style mixing for StyleGAN),
both Adam updates and the EMA update, at 1024x1024 with alpha = 1. Batch 2 is the smallest batch for
which minibatch stddev (group size 4, shrunk to the largest divisor of N) sees more than one image;
the test checks that its feature is not zero. It proves the shapes and the graph, not speed: on this
project's 2-core CPU VM it takes minutes, see the README for the numbers.
"""
from __future__ import annotations

import copy
import contextlib

import pytest
import torch

from families import FAMILIES
from progan.training.ema import update_ema
from progan.training.step import StepContext, discriminator_step, generator_step

BATCH = 2


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.slow
@pytest.mark.parametrize("family_name", ["progan", "stylegan_lite"])
def test_one_full_training_step_at_paper_1024(family_name):
    family = FAMILIES[family_name]
    config = family.preset("paper-1024")
    stage = config.num_stages - 1
    torch.manual_seed(0)
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    g_ema = copy.deepcopy(g).requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    stddev = []
    d.blocks[0].mbstd.register_forward_hook(lambda _m, _i, out: stddev.append(float(out[:, -1].detach().abs().max())))
    ctx = StepContext(generator=g, discriminator=d, loss=family.default_loss, stage=stage, alpha=1.0,
                      latent_dim=config.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                      backward=lambda loss: loss.backward(),
                      mixing_prob=0.9 if family_name == "stylegan_lite" else 0.0)
    reals = [torch.rand(BATCH, 3, config.resolution, config.resolution) * 2 - 1]

    d_terms = discriminator_step(ctx, reals)
    penalty = "d_gp" if family.default_loss == "wgan_gp" else "d_r1"
    assert all(torch.isfinite(v) for v in d_terms.values()) and d_terms[penalty] > 0
    assert _grad_norm(d.from_rgb[stage]) > 0 and _grad_norm(d.blocks[stage]) > 0   # D's 1024 px input block
    assert all(p.grad is None for p in g.parameters())
    assert stddev and min(stddev) > 0                                             # minibatch stddev was live
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)

    g_terms = generator_step(ctx, BATCH, 1)
    assert torch.isfinite(g_terms["g_loss"])
    top = g.blocks[stage] if family_name == "progan" else g.synthesis.layers[2 * stage + 1]
    to_rgb = g.to_rgb[stage] if family_name == "progan" else g.synthesis.to_rgb[stage]
    assert _grad_norm(top) > 0 and _grad_norm(to_rgb) > 0                          # G's 1024 px output block
    assert all(p.grad is None for p in d.parameters())
    before = [p.clone() for p in to_rgb.parameters()]
    opt_g.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, to_rgb.parameters()))
    update_ema(g_ema, g, beta=0.5)
    with torch.no_grad():
        image = g_ema(torch.randn(1, config.latent_dim), stage=stage)
    assert image.shape == (1, 3, 1024, 1024) == (1, 3, config.resolution, config.resolution)
    assert torch.isfinite(image).all()
