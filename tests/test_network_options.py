"""Model-config options given their non-default values, each checked against a property worked out by hand.

Every preset uses the defaults (pixel norm on, minibatch-stddev group 4 with one feature, StyleGAN's
blur on), so an option that a network silently ignored would pass every other test.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from families import FAMILIES
from progan.layers import Blur, PixelNorm
from progan.networks import ConvLayer

PROGAN, STYLE = FAMILIES["progan"], FAMILIES["stylegan_lite"]


@pytest.mark.parametrize("pixel_norm", [True, False])
def test_use_pixel_norm_decides_the_generators_scale_behaviour(pixel_norm):
    """At initialisation every bias is 0 and leaky ReLU is positively homogeneous, so without pixel norm
    G(3z) = 3 G(z) exactly; with it, z is normalised first (G(3z) = G(z)) and every 3x3 conv layer's output
    has unit RMS over channels at each pixel (ProGAN section 4.2)."""
    config = dataclasses.replace(PROGAN.presets["tiny"], use_pixel_norm=pixel_norm)
    torch.manual_seed(0)
    generator = PROGAN.generator_cls(config).eval()
    assert all((p == 0).all() for name, p in generator.named_parameters() if name.endswith("bias"))
    outputs = []
    for layer in (m for m in generator.modules() if isinstance(m, ConvLayer)):
        layer.register_forward_hook(lambda module, args, out: outputs.append(out))
    # the 4x4 input block's dense output is normalised too, before its conv
    generator.blocks[0].conv.register_forward_pre_hook(lambda module, args: outputs.append(args[0]))
    z = torch.randn(3, config.latent_dim)
    with torch.no_grad():
        once, thrice = generator(z), generator(3 * z)
    layers_per_forward = 1 + 1 + 2 * (len(config.resolutions) - 1)         # dense + conv at 4x4, two per block
    assert len(outputs) == 2 * layers_per_forward
    rms = [out.square().mean(dim=1).sqrt() for out in outputs]              # [N, H, W] each
    if pixel_norm:
        torch.testing.assert_close(thrice, once, rtol=1e-5, atol=1e-5)
        for r in rms:
            torch.testing.assert_close(r, torch.ones_like(r), rtol=1e-4, atol=1e-4)
    else:
        torch.testing.assert_close(thrice, 3 * once, rtol=1e-5, atol=1e-5)
        assert not any(isinstance(m, PixelNorm) for m in generator.modules())
        assert all((r - 1).abs().max() > 0.1 for r in rms)


def test_discriminator_uses_the_configs_minibatch_stddev_group_and_features():
    """mbstd_group_size=2, mbstd_num_features=2: for a batch of 4, sample i shares its group with sample
    i + 2 (i % (N / G)), and each of the 2 appended maps is the std over the group, averaged over its half
    of the channels and the 4x4 pixels; computed here by loops from what enters the layer."""
    config = dataclasses.replace(PROGAN.presets["tiny"], mbstd_group_size=2, mbstd_num_features=2)
    torch.manual_seed(0)
    disc = PROGAN.discriminator_cls(config)
    seen = []
    disc.blocks[0].conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    images = torch.randn(4, 3, 16, 16) * torch.tensor([0.5, 1.0, 2.0, 4.0]).view(-1, 1, 1, 1)
    with torch.no_grad():
        scores = disc(images)
    x = seen[0]                                                             # [4, C + 2, 4, 4]
    c = config.channels(4)
    assert x.shape == (4, c + 2, 4, 4)
    for i in range(4):
        group = x[[i % 2, i % 2 + 2], :c]                                   # the two samples of i's group
        for f in range(2):
            part = group[:, f * c // 2:(f + 1) * c // 2]
            std = ((part - part.mean(0)).square().mean(0) + 1e-8).sqrt().mean()
            torch.testing.assert_close(x[i, c + f], torch.full((4, 4), float(std)), rtol=1e-5, atol=1e-6)
    # a change outside sample 0's group (sample 1) leaves its score alone; one inside (sample 2) does not
    with torch.no_grad():
        other = images.clone()
        other[1] *= 3
        assert torch.equal(disc(other)[0], scores[0]) and not torch.equal(disc(other)[1], scores[1])
        other = images.clone()
        other[2] *= 3
        assert not torch.equal(disc(other)[0], scores[0])


def test_stylegan_blur_false_is_the_same_network_without_the_filter():
    """blur=False: the generator drawn from the same seed equals the blurred one with each Blur replaced by
    the identity (Blur has no parameters, so both draw the same weights), and differs from it as built."""
    config = STYLE.presets["tiny"]
    torch.manual_seed(0)
    blurred = STYLE.generator_cls(config).eval()
    torch.manual_seed(0)
    plain = STYLE.generator_cls(dataclasses.replace(config, blur=False)).eval()
    assert sum(isinstance(m, Blur) for m in blurred.modules()) == len(config.resolutions) - 1
    assert not any(isinstance(m, Blur) for m in plain.modules())
    z = torch.randn(2, config.latent_dim)
    with torch.no_grad():
        as_built = blurred(z, noise_mode="const")
        for module in blurred.modules():
            if hasattr(module, "blur") and isinstance(module.blur, Blur):
                module.blur = torch.nn.Identity()
        torch.testing.assert_close(plain(z, noise_mode="const"), blurred(z, noise_mode="const"), rtol=0, atol=0)
    assert not torch.allclose(plain(z, noise_mode="const"), as_built)


@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_w_avg_moves_at_the_configs_beta(beta):
    """w_avg_beta other than 0.995: from w_avg = a, two updates with batches of means m1, m2 give
    beta^2 a + beta (1 - beta) m1 + (1 - beta) m2 (the EMA written out by hand)."""
    config = dataclasses.replace(STYLE.presets["tiny"], w_avg_beta=beta)
    generator = STYLE.generator_cls(config)
    a = torch.linspace(-1, 1, config.w_dim)
    generator.w_avg.copy_(a)
    w1, w2 = torch.randn(5, config.w_dim) + 2, torch.randn(3, config.w_dim) - 1
    generator.update_w_avg(w1)
    generator.update_w_avg(w2)
    expected = beta**2 * a + beta * (1 - beta) * w1.mean(0) + (1 - beta) * w2.mean(0)
    torch.testing.assert_close(generator.w_avg, expected, rtol=1e-5, atol=1e-6)
