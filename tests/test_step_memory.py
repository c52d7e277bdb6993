"""The D step backpropagates its fake half before building the real half and its penalty graph
(stylegan2-ada loss.py phases Dgen, then Dreal + Dr1): same gradients, a smaller peak of saved
activations. Memory is measured by counting the bytes autograd keeps alive (saved-tensor hooks),
which works on CPU the same way it would on a GPU (the meter lives in ``progan.training.memory``)."""
from __future__ import annotations

import contextlib

import pytest
import torch

from progan.losses import discriminator_loss
from progan.training.memory import SavedTensorBytes as SavedBytes
from progan.training.step import StepContext, discriminator_step


def _setup(family, loss):
    torch.manual_seed(0)
    config = family.presets["small-32"]
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    ctx = StepContext(generator=g, discriminator=d, loss=loss, stage=config.num_stages - 1, alpha=1.0,
                      latent_dim=config.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                      backward=lambda l: l.backward())
    return ctx, [torch.rand(8, 3, 32, 32) * 2 - 1]


@pytest.mark.parametrize("loss", ["wgan_gp", "logistic_r1"])
def test_fake_half_first_same_gradients_lower_peak(family, loss):
    ctx, reals = _setup(family, loss)
    torch.manual_seed(1)
    with SavedBytes() as split:
        discriminator_step(ctx, reals)
    split_grads = torch.cat([p.grad.flatten() for p in ctx.discriminator.parameters() if p.grad is not None])

    ctx, reals = _setup(family, loss)  # the textbook form: one loss, one backward
    torch.manual_seed(1)
    with SavedBytes() as joint:
        ctx.generator.requires_grad_(False)
        with torch.no_grad():
            fake = ctx.generator(torch.randn(8, ctx.latent_dim), stage=ctx.stage)
        critic = lambda x: ctx.discriminator(x, stage=ctx.stage, alpha=1.0)
        # the split step evaluates D on fakes first, so its RNG (GP's interpolation weights) comes after
        total, _ = discriminator_loss(loss, critic, reals[0], fake)
        total.backward()
    joint_grads = torch.cat([p.grad.flatten() for p in ctx.discriminator.parameters() if p.grad is not None])
    torch.testing.assert_close(split_grads, joint_grads, rtol=1e-4, atol=1e-5)
    assert split.peak < 0.8 * joint.peak, (split.peak, joint.peak)
