"""StyleGAN-lite's mapping network f: Z -> W against a reference written here from the paper.

Karras et al., "A Style-Based Generator Architecture for GANs" (CVPR 2019), section 2 and appendix C,
written with ``torch.nn.functional`` only and the model's parameters read by name (nothing of
``progan.layers`` or ``stylegan_lite`` is called by the reference):

- z is normalised per sample first: ``z / sqrt(mean(z^2) + 1e-8)`` (pixel norm over the features);
- then every one of the MLP's layers is a fully connected layer followed by leaky ReLU 0.2, the last
  layer included (NVIDIA's G_mapping applies the activation to every layer, so w is an LReLU output);
- equalized learning rate with the mapping network's learning-rate multiplier (appendix C: 0.01): the
  stored weight is multiplied at run time by ``lr_mul * sqrt(2) / sqrt(fan_in)`` and the stored bias by
  ``lr_mul`` (the project's parameterisation, ``progan.layers.EqualizedLinear``, as NVIDIA's code).

The biases are redrawn to non-zero values first (an untrained model has zero biases, under which a
bias that is dropped, or scaled wrongly, changes nothing). Checked for 2 layers (the ``tiny`` preset),
4 (``demo-32``) and the paper's 8.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_lite.config import PRESETS
from stylegan_lite.networks import Generator

ATOL = 1e-5


def reference_mapping(params: dict[str, torch.Tensor], z: torch.Tensor, *, num_layers: int,
                      lr_mul: float) -> torch.Tensor:
    x = z / torch.sqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
    for i in range(num_layers):
        weight, bias = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
        scale = lr_mul * math.sqrt(2.0) / math.sqrt(weight.shape[1])
        x = F.leaky_relu(F.linear(x, weight * scale, bias * lr_mul), 0.2)
    return x


def make_generator(preset: str, mapping_layers: int | None = None) -> Generator:
    torch.manual_seed(0)
    config = PRESETS[preset]
    if mapping_layers is not None:
        config = dataclasses.replace(config, mapping_layers=mapping_layers)
    generator = Generator(config).eval()
    lr_mul = config.mapping_lr_multiplier
    with torch.no_grad():
        for name, param in generator.mapping.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn_like(param) / lr_mul)              # stored at the 1/lr_mul scale
    for name, param in generator.mapping.named_parameters():
        assert param.abs().max() > 1e-3, name
    return generator


@pytest.mark.parametrize("preset,mapping_layers", [("tiny", None), ("demo-32", None), ("tiny", 8)])
def test_mapping_matches_the_papers_mlp(preset, mapping_layers):
    generator = make_generator(preset, mapping_layers)
    config = generator.config
    assert config.mapping_lr_multiplier == 0.01                              # appendix C
    params = {name: p.detach().clone() for name, p in generator.mapping.named_parameters()}
    assert set(params) == {f"layers.{i}.{k}" for i in range(config.mapping_layers) for k in ("weight", "bias")}
    z = torch.randn(5, config.latent_dim, generator=torch.Generator().manual_seed(1)) * 3.0
    expected = reference_mapping(params, z, num_layers=config.mapping_layers,
                                 lr_mul=config.mapping_lr_multiplier)
    with torch.no_grad():
        got = generator.map(z)
    assert got.shape == (5, config.w_dim)
    assert (expected < 0).any() and (expected > 0).any()                   # both sides of the LReLU taken
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=ATOL)
