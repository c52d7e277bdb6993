"""The configurations' and layers' own defaults are the papers' values (ProGAN, Karras et al. 2018, section 3,
section 4.2 and table 2; StyleGAN, Karras et al. 2019, section 2 and appendix C).

Every preset names its sizes, so a default changed in a dataclass field or a layer's signature reached no
test (the default sweep, docs/testing.md): a user building ``ProGANConfig()`` or ``PixelNorm()`` gets it.
"""
from __future__ import annotations

import math

import torch

from progan.config import ProGANConfig
from progan.layers import MinibatchStdDev, PixelNorm
from stylegan_lite.config import StyleGANConfig


def test_the_progan_config_defaults_to_the_papers_celeba_hq_network():
    config = ProGANConfig()
    assert config.resolution == 1024 and config.latent_dim == 512 and config.image_channels == 3
    # table 2: 512 feature maps at 4..32 px, then halved at each doubling down to 16 at 1024
    assert [config.channels(r) for r in config.resolutions] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert config.resolutions == (4, 8, 16, 32, 64, 128, 256, 512, 1024)
    # section 3: minibatch stddev over groups of 4 (the released code's default), one appended map;
    # section 4.2: pixel norm in the generator; unconditional
    assert (config.mbstd_group_size, config.mbstd_num_features, config.use_pixel_norm) == (4, 1, True)
    assert config.class_names == () and config.num_classes == 0


def test_the_stylegan_config_defaults_to_the_papers_mapping_and_synthesis():
    config = StyleGANConfig()
    # section 2: 512-d z and w, an 8-layer mapping MLP, a [1 2 1] low-pass filter; appendix C: the mapping
    # network's learning rate x0.01; the released code's w_avg tracking rate 0.995
    assert (config.latent_dim, config.w_dim, config.mapping_layers) == (512, 512, 8)
    assert config.mapping_lr_multiplier == 0.01 and config.blur is True and config.w_avg_beta == 0.995
    assert config.blur_padding == "replicate"  # what every export before the field was trained with
    assert [config.channels(r) for r in config.resolutions] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert config.num_ws == 18  # two styles per resolution, 4..1024


def test_pixel_norm_default_epsilon_is_1e_8_where_it_matters():
    # a = 1e-4 everywhere: mean(a^2) = 1e-8, so b = 1e-4 / sqrt(1e-8 + eps) = 1/sqrt(2) only for eps = 1e-8
    x = torch.full((1, 4, 2, 2), 1e-4, dtype=torch.float64)
    out = PixelNorm()(x)
    torch.testing.assert_close(out, torch.full_like(x, 1 / math.sqrt(2)), rtol=1e-6, atol=0)


def test_minibatch_stddev_default_groups_are_four_or_the_largest_divisor_below():
    # N = 10: groups of 4 do not divide it, nor 3; the default falls back to pairs (i, i + 5), where a
    # group size of 5 would have made quintuples. Pair std per element is |a - b| / 2 (eps 1e-8 negligible).
    torch.manual_seed(0)
    x = torch.randn(10, 3, 2, 2, dtype=torch.float64) * 10
    got = MinibatchStdDev()(x)[:, 3]
    for i in range(10):
        j = (i + 5) % 10
        expected = ((x[i] - x[j]).abs() / 2).mean()
        torch.testing.assert_close(got[i], torch.full_like(got[i], expected.item()), rtol=1e-6, atol=0)
    # N = 8: two groups of four, sample i with i % 2's group
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64) * 10
    got = MinibatchStdDev()(x)[:, 3, 0, 0]
    for i in range(8):
        members = x[i % 2::2]
        assert torch.isclose(got[i], members.std(dim=0, unbiased=False).mean(), rtol=1e-6)
