"""ProGAN's networks against a reference forward pass written from the paper, op by op.

Karras et al. 2018 (Progressive Growing of GANs), section 2 (fade-in), section 3 (minibatch stddev),
section 4 (equalized learning rate, pixel norm) and appendix A / table 2 (the layer order). The
reference below is written with ``torch.nn.functional`` only, from the paper, reading nothing from
``progan`` but the parameter tensors (by their saved names); it checks the *order* of operations inside
each block, which shape and statistics tests cannot see (a pixel norm moved before its leaky ReLU keeps
every shape and every RMS, yet changes every image).

Generator (table 2): ``z`` pixel-normalised; a dense layer standing for the 4x4 conv on 1x1, reshaped
to ``[N, C, 4, 4]``, LReLU 0.2, pixel norm; a 3x3 conv, LReLU, pixel norm; each later block: nearest
upsample x2, then two (3x3 conv, LReLU, pixel norm); ToRGB a linear 1x1 conv; during a transition
``(1 - alpha) * upsample(ToRGB_prev(x_prev)) + alpha * ToRGB(x)``.

Discriminator (table 2): FromRGB 1x1 conv + LReLU; each block: (3x3 conv, LReLU) twice, 2x2 average
pool; transition ``(1 - alpha) * LReLU(FromRGB_prev(avgpool(img))) + alpha * block(...)``; at 4x4:
minibatch stddev (one extra map), 3x3 conv + LReLU, dense '4x4 conv' + LReLU, dense to one score.

Equalized learning rate: the stored weight times ``gain / sqrt(fan_in)`` on every call (section 4.1).
Where the project follows NVIDIA's reference implementation rather than the paper's text, the test
follows the project (documented in ``progan/networks.py``):
- the generator's first dense layer uses gain ``sqrt(2) / 4`` (it stands for a 4x4 conv on 1x1);
- ToRGB and the discriminator's last dense layer are linear, gain 1; every other layer gain sqrt(2);
- the dense output is reshaped channel-major (``[N, C * 16] -> [N, C, 4, 4]``), and D flattens the same way;
- minibatch stddev groups sample ``i`` with the samples ``j`` for which ``j % (N // group_size)`` is
  ``i % (N // group_size)``, with the biased variance plus 1e-8 under the square root.

Every parameter, biases included, is redrawn N(0, 1) before comparing: a fresh model has zero biases,
which would hide a bias added in the wrong place (docs/testing.md, degenerate fixtures).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from progan.config import ProGANConfig
from progan.networks import Discriminator, Generator

SLOPE = 0.2
HE = math.sqrt(2.0)
# channels 16 at 4x4, 8 at 8x8, 4 at 16x16: every block changes width, so a swapped in/out shows
CONFIG = ProGANConfig(resolution=16, latent_dim=8, channel_base=64, channel_max=16)
CASES = [(0, 1.0), (1, 1.0), (1, 0.3), (2, 1.0), (2, 0.3)]


def _randomize(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, SLOPE * x)


def _linear(p: dict, name: str, x: torch.Tensor, gain: float = HE) -> torch.Tensor:
    w = p[f"{name}.weight"]
    return F.linear(x, w * (gain / math.sqrt(w.shape[1])), p[f"{name}.bias"])


def _conv(p: dict, name: str, x: torch.Tensor, gain: float = HE) -> torch.Tensor:
    w = p[f"{name}.weight"]                                     # [Cout, Cin, k, k]
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    return F.conv2d(x, w * (gain / math.sqrt(fan_in)), p[f"{name}.bias"], padding=w.shape[-1] // 2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def reference_generator(p: dict, z: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
    c = p["blocks.0.dense.bias"].numel() // 16
    x = _pixel_norm(z)
    x = _linear(p, "blocks.0.dense", x, gain=HE / 4).reshape(-1, c, 4, 4)
    x = _pixel_norm(_lrelu(x))
    x = _pixel_norm(_lrelu(_conv(p, "blocks.0.conv.conv", x)))
    prev = x
    for s in range(1, stage + 1):
        prev = x
        x = _up(x)
        x = _pixel_norm(_lrelu(_conv(p, f"blocks.{s}.conv1.conv", x)))
        x = _pixel_norm(_lrelu(_conv(p, f"blocks.{s}.conv2.conv", x)))
    rgb = _conv(p, f"to_rgb.{stage}", x, gain=1.0)
    if stage == 0:
        return rgb
    skip = _up(_conv(p, f"to_rgb.{stage - 1}", prev, gain=1.0))
    return (1.0 - alpha) * skip + alpha * rgb


def _minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    n = x.shape[0]
    num_groups = n // group_size                                # group_size divides n in these tests
    extra = torch.empty(n, 1, *x.shape[2:])
    for m in range(num_groups):
        members = x[m::num_groups]                              # [group_size, C, H, W]
        var = ((members - members.mean(dim=0)) ** 2).mean(dim=0)
        extra[m::num_groups] = torch.sqrt(var + 1e-8).mean()
    return torch.cat([x, extra], dim=1)


def reference_discriminator(p: dict, images: torch.Tensor, stage: int, alpha: float, group_size: int
                            ) -> torch.Tensor:
    x = _lrelu(_conv(p, f"from_rgb.{stage}", images))
    for s in range(stage, 0, -1):
        x = _lrelu(_conv(p, f"blocks.{s}.conv1", x))
        x = _lrelu(_conv(p, f"blocks.{s}.conv2", x))
        x = F.avg_pool2d(x, 2)
        if s == stage and alpha < 1.0:
            skip = _lrelu(_conv(p, f"from_rgb.{stage - 1}", F.avg_pool2d(images, 2)))
            x = (1.0 - alpha) * skip + alpha * x
    x = _minibatch_stddev(x, group_size)
    x = _lrelu(_conv(p, "blocks.0.conv", x))
    x = _lrelu(_linear(p, "blocks.0.dense", x.reshape(x.shape[0], -1)))
    return _linear(p, "blocks.0.out", x, gain=1.0)


@pytest.mark.parametrize("stage,alpha", CASES)
def test_generator_matches_the_papers_layer_order(stage: int, alpha: float) -> None:
    torch.manual_seed(0)
    g = Generator(CONFIG).eval()
    _randomize(g, seed=1)
    params = {k: v.detach() for k, v in g.named_parameters()}
    z = torch.randn(5, CONFIG.latent_dim, generator=torch.Generator().manual_seed(2)) * 3.0
    with torch.no_grad():
        got = g(z, stage=stage, alpha=alpha)
    want = reference_generator(params, z, stage, alpha)
    assert got.shape == (5, 3, 4 * 2**stage, 4 * 2**stage)
    assert want.abs().mean() > 0.1                              # not a comparison of near-zeros
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stage,alpha", CASES)
def test_discriminator_matches_the_papers_layer_order(stage: int, alpha: float) -> None:
    torch.manual_seed(0)
    d = Discriminator(CONFIG).eval()
    _randomize(d, seed=3)
    params = {k: v.detach() for k, v in d.named_parameters()}
    r = 4 * 2**stage
    images = torch.randn(8, 3, r, r, generator=torch.Generator().manual_seed(4))  # 2 groups of 4
    with torch.no_grad():
        got = d(images, stage=stage, alpha=alpha)
    want = reference_discriminator(params, images, stage, alpha, CONFIG.mbstd_group_size)
    assert got.shape == (8, 1)
    assert want.std() > 0.01                                    # scores that differ, 1000x the tolerance
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_the_fade_in_is_continuous_with_the_reference_at_both_ends() -> None:
    """alpha 0 is the previous stage upsampled (G) and the previous stage on pooled images (D)."""
    torch.manual_seed(0)
    g, d = Generator(CONFIG).eval(), Discriminator(CONFIG).eval()
    _randomize(g, seed=5)
    _randomize(d, seed=6)
    gp = {k: v.detach() for k, v in g.named_parameters()}
    dp = {k: v.detach() for k, v in d.named_parameters()}
    z = torch.randn(4, CONFIG.latent_dim, generator=torch.Generator().manual_seed(7))
    images = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(g(z, stage=1, alpha=0.0), _up(reference_generator(gp, z, 0, 1.0)),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(d(images, stage=1, alpha=0.0),
                                   reference_discriminator(dp, F.avg_pool2d(images, 2), 0, 1.0, 4),
                                   rtol=1e-5, atol=1e-5)
