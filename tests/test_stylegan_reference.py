"""StyleGAN-lite's synthesis network against a reference forward pass written here from the paper.

Karras et al., "A Style-Based Generator Architecture for GANs" (CVPR 2019), section 2 and figure 1b,
written with ``torch.nn.functional`` only and the model's parameters read by name (nothing of
``progan.layers`` or ``stylegan_lite`` is called by the reference):

- a learned constant 4x4 input;
- per layer: ``[upsample x2 -> conv 3x3 -> blur]`` for the first layer of a block (a plain conv 3x3 for
  the second; nothing for the very first layer, which works on the constant), then per-pixel noise
  (one ``[N, 1, H, W]`` map) scaled by a learned per-channel strength ("B"), then the bias, leaky ReLU
  0.2, then AdaIN: instance normalisation followed by the style ``(y_s, y_b) = A(w)`` as scale and bias;
- ToRGB (1x1 conv) at the active stage; while fading in, ``lerp(up(ToRGB_prev(prev)), ToRGB(x), alpha)``.

Equalized learning rate (ProGAN section 4.1): each weight is multiplied at run time by
``gain / sqrt(fan_in)``, gain sqrt(2) for the 3x3 convs and 1 for A and ToRGB (as NVIDIA's code).

Where the project deliberately departs from the paper or NVIDIA's code, the reference follows the
project (these are its documented choices, see ``stylegan_lite/networks.py`` and ``progan.layers``):

- the blur ``[1, 2, 1] x [1, 2, 1] / 16`` sees replicated edge pixels by default (``blur_padding =
  "replicate"``, what the bundled weights were trained with); NVIDIA's blur2d zero-pads, which the
  project offers as ``blur_padding = "zero"``; both are checked;
- upsampling is nearest-neighbour followed by a separate conv (no fused transposed conv);
- A is parameterised so that ``y_s`` itself is the scale (its bias initialised to 1), where NVIDIA
  computes ``x * (y_s + 1)``; the two are the same map, reparameterised;
- instance norm uses ``rsqrt(var + 1e-8)`` with the biased variance.

Noise strengths, biases, the constant and A's bias are set to random non-zero values first: an
untrained model has zero noise strengths and zero biases, under which swapping noise, bias or AdaIN
around changes nothing. The output is compared with explicit noise maps at two stages and at a
fade-in alpha between two.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_lite.config import PRESETS
from stylegan_lite.networks import SynthesisNetwork

ATOL = 1e-5


class Params:
    """The synthesis network's parameters by name, recording which ones the reference read."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.values = {name: p.detach().clone() for name, p in module.named_parameters()}
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> torch.Tensor:
        self.read.add(name)
        return self.values[name]


def he(weight: torch.Tensor, gain: float) -> torch.Tensor:
    """Equalized learning rate: ``weight * gain / sqrt(fan_in)``, fan_in = all but the output dim."""
    return weight * (gain / math.sqrt(weight[0].numel()))


def blur(x: torch.Tensor, padding: str) -> torch.Tensor:
    """Depthwise ``[1, 2, 1]`` outer product / 16; edge pixels replicated or zeros beyond the border."""
    k = torch.tensor([1.0, 2.0, 1.0])
    kernel = (torch.outer(k, k) / 16.0).expand(x.shape[1], 1, 3, 3)
    if padding == "replicate":
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])
    return F.conv2d(x, kernel, padding=1, groups=x.shape[1])


def adain(x: torch.Tensor, w: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``y_s * (x - mu) / sigma + y_b`` with ``[y_s, y_b] = A(w)`` (A: equalized, gain 1)."""
    c = x.shape[1]
    style = w @ he(weight, 1.0).t() + bias                                 # [N, 2C]
    y_s, y_b = style[:, :c, None, None], style[:, c:, None, None]
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).square().mean(dim=(2, 3), keepdim=True)
    return y_s * (x - mean) / torch.sqrt(var + 1e-8) + y_b


def reference_synthesis(p: Params, ws: torch.Tensor, noise: list[torch.Tensor], *, stage: int,
                        alpha: float, blur_padding: str) -> torch.Tensor:
    x = p["input.weight"].expand(ws.shape[0], -1, -1, -1)                 # [N, C, 4, 4]
    prev = x
    for i in range(2 * stage + 2):
        if i == 2 * stage:
            prev = x                                                       # the previous stage's features
        if i >= 2 and i % 2 == 0:                                          # first layer of a block
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, he(p[f"layers.{i}.conv.weight"], math.sqrt(2)), padding=1)
            x = blur(x, blur_padding)
        elif i > 0:                                                        # second layer of a block
            x = F.conv2d(x, he(p[f"layers.{i}.conv.weight"], math.sqrt(2)), padding=1)
        x = x + p[f"layers.{i}.noise.weight"].view(1, -1, 1, 1) * noise[i]   # B: per-channel strength
        x = x + p[f"layers.{i}.bias"].view(1, -1, 1, 1)
        x = F.leaky_relu(x, 0.2)
        x = adain(x, ws[:, i], p[f"layers.{i}.adain.affine.weight"], p[f"layers.{i}.adain.affine.bias"])
    rgb = F.conv2d(x, he(p[f"to_rgb.{stage}.weight"], 1.0), p[f"to_rgb.{stage}.bias"])
    if stage == 0 or alpha >= 1.0:
        return rgb
    skip = F.conv2d(prev, he(p[f"to_rgb.{stage - 1}.weight"], 1.0), p[f"to_rgb.{stage - 1}.bias"])
    skip = F.interpolate(skip, scale_factor=2, mode="nearest")
    return (1.0 - alpha) * skip + alpha * rgb


def make_synthesis(blur_padding: str) -> SynthesisNetwork:
    """A tiny synthesis network (4 -> 8 -> 16 px, 16/16/8 channels) with every parameter non-zero."""
    torch.manual_seed(0)
    config = dataclasses.replace(PRESETS["tiny"], blur_padding=blur_padding)
    synthesis = SynthesisNetwork(config).eval()
    with torch.no_grad():
        for name, param in synthesis.named_parameters():
            if name.endswith("noise.weight") or name.endswith("bias") or name == "input.weight":
                param.add_(0.5 * torch.randn_like(param))                  # noise strengths, biases, constant
    for name, param in synthesis.named_parameters():
        if name.endswith("noise.weight"):
            assert param.abs().min() > 1e-3, name                          # noise bugs cannot hide behind 0
    return synthesis


def inputs(synthesis: SynthesisNetwork, stage: int, batch: int = 3) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Different random styles per layer (so a layer reading another's w shows) and explicit noise."""
    config = synthesis.config
    g = torch.Generator().manual_seed(1)
    ws = torch.randn(batch, config.num_ws, config.w_dim, generator=g)
    res = config.resolutions
    noise = [torch.randn(batch, 1, res[i // 2], res[i // 2], generator=g) for i in range(2 * stage + 2)]
    return ws, noise


@pytest.mark.parametrize("blur_padding", ["replicate", "zero"])
@pytest.mark.parametrize("stage,alpha", [(1, 1.0), (2, 1.0), (2, 0.3)])
def test_synthesis_matches_the_papers_order_of_operations(blur_padding, stage, alpha):
    synthesis = make_synthesis(blur_padding)
    ws, noise = inputs(synthesis, stage)
    p = Params(synthesis)
    expected = reference_synthesis(p, ws, noise, stage=stage, alpha=alpha, blur_padding=blur_padding)
    with torch.no_grad():
        got = synthesis(ws, stage=stage, alpha=alpha, noise=noise)
    assert got.shape == (3, synthesis.config.image_channels, 4 * 2**stage, 4 * 2**stage)
    assert expected.abs().max() > 0.1                                      # not a trivially flat image
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=ATOL)


def test_the_noise_maps_and_the_fade_in_are_visible_in_the_output():
    """The comparison above would be blind if noise or alpha did not reach the output at all."""
    synthesis = make_synthesis("replicate")
    ws, noise = inputs(synthesis, 2)
    with torch.no_grad():
        base = synthesis(ws, stage=2, alpha=0.3, noise=noise)
        other_noise = synthesis(ws, stage=2, alpha=0.3, noise=[n.flip(-1) for n in noise])
        other_alpha = synthesis(ws, stage=2, alpha=0.7, noise=noise)
    assert (base - other_noise).abs().max() > 1e-2
    assert (base - other_alpha).abs().max() > 1e-2


def test_the_reference_reads_every_parameter_the_stage_uses():
    """At the last stage while fading in, every synthesis parameter except the 4 px ToRGB takes part:
    the model holds no weight the paper's computation leaves out."""
    synthesis = make_synthesis("replicate")
    ws, noise = inputs(synthesis, 2)
    p = Params(synthesis)
    reference_synthesis(p, ws, noise, stage=2, alpha=0.3, blur_padding="replicate")
    assert p.read == set(p.values) - {"to_rgb.0.weight", "to_rgb.0.bias"}
