"""Property tests of ProGAN's tricks (Karras et al. 2018, sections 3, 4.1, 4.2) and StyleGAN's AdaIN."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from progan.layers import Blur, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from stylegan_lite.layers import AdaIN, MappingNetwork, NoiseInjection
from stylegan_lite.networks import StyledLayer


def test_equalized_linear_applies_he_constant_at_runtime():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 64)
    # stored weights are N(0, 1): the scale is not baked into the parameter
    assert abs(layer.weight.std().item() - 1.0) < 0.02
    x = torch.randn(8, 256)
    expected = x @ (layer.weight * math.sqrt(2) / math.sqrt(256)).T + layer.bias
    torch.testing.assert_close(layer(x), expected)
    assert "weight_scale" not in dict(layer.named_buffers()) and len(list(layer.parameters())) == 2


def test_equalized_linear_lr_multiplier_keeps_effective_init_and_slows_learning():
    torch.manual_seed(0)
    slow = EqualizedLinear(512, 512, lr_multiplier=0.01)
    # effective weight has He std regardless of the multiplier
    effective = slow.weight * slow.weight_scale
    assert abs(effective.std().item() - math.sqrt(2 / 512)) / math.sqrt(2 / 512) < 0.02
    # a unit step on the stored weight moves the effective weight 100x less than at lr_multiplier=1
    fast = EqualizedLinear(512, 512)
    assert math.isclose(slow.weight_scale / fast.weight_scale, 0.01, rel_tol=1e-9)


def test_equalized_conv_effective_output_scale():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 64, 3, bias=False)
    x = torch.randn(16, 64, 16, 16)
    y = conv(x)[:, :, 1:-1, 1:-1]  # interior pixels: no padding effects
    # He init keeps the second moment of a linear layer's output at gain^2 = 2 times the input's
    assert abs(y.square().mean().item() / x.square().mean().item() - 2.0) < 0.15
    assert conv.weight_scale == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9))


@pytest.mark.parametrize("gain", [1.0, 2**0.5 / 4])
def test_equalized_layers_apply_the_gain_they_are_given(gain):
    """Non-default gains are what the networks use for ToRGB and D's output (1) and the 4x4 dense layer
    (sqrt(2)/4): each output is sum_c W[o, c] * gain / sqrt(fan_in) * x[c] + b, written out with einsum
    (1x1 conv: fan_in = C); bias_init with an lr multiplier gives that bias at run time."""
    torch.manual_seed(0)
    conv = EqualizedConv2d(6, 4, 1, gain=gain)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 6, 3, 3)
    weight = conv.weight[:, :, 0, 0] * gain / math.sqrt(6)                      # [O, C]
    expected = torch.einsum("oc,nchw->nohw", weight, x) + conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(conv(x), expected)
    linear = EqualizedLinear(8, 5, gain=gain, bias_init=0.5, lr_multiplier=0.1)
    x = torch.randn(3, 8)
    expected = x @ (linear.weight * 0.1 * gain / math.sqrt(8)).T + 0.5
    torch.testing.assert_close(linear(x), expected)


def test_equalized_layers_print_their_sizes():
    """Cosmetic: ``print(model)`` shows each layer's sizes (its ``extra_repr``), like nn.Linear/nn.Conv2d."""
    assert "in_features=3, out_features=5, bias=True" in repr(EqualizedLinear(3, 5))
    assert "(2, 7, kernel_size=3, bias=False" in repr(EqualizedConv2d(2, 7, 3, bias=False))


def test_pixel_norm_gives_unit_rms_per_pixel():
    x = torch.randn(4, 32, 8, 8) * torch.rand(4, 1, 8, 8) * 10
    y = PixelNorm()(x)
    rms = y.square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-4, rtol=0)
    # direction is preserved
    torch.testing.assert_close(y / y.norm(dim=1, keepdim=True), x / x.norm(dim=1, keepdim=True))


@pytest.mark.parametrize("num_features", [1, 2])
def test_minibatch_stddev_adds_channels_that_depend_on_the_batch(num_features):
    torch.manual_seed(0)
    layer = MinibatchStdDev(group_size=4, num_features=num_features)
    x = torch.randn(8, 6, 4, 4)
    y = layer(x)
    assert y.shape == (8, 6 + num_features, 4, 4)
    torch.testing.assert_close(y[:, :6], x)
    stat = y[:, 6:]
    # constant over pixels; groups are samples i % 2: {0,2,4,6} and {1,3,5,7}
    assert torch.all(stat == stat[:, :, :1, :1])
    torch.testing.assert_close(stat[0], stat[2])
    g = x[0::2].reshape(4, num_features, 6 // num_features, 4, 4)
    expected = (g.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    torch.testing.assert_close(stat[0, :, 0, 0], expected)
    # changing another sample of the group changes this sample's feature: it sees the batch
    x2 = x.clone()
    x2[4] *= 5
    assert not torch.allclose(layer(x2)[0, 6:], stat[0])
    # identical samples have zero spread (up to eps)
    same = layer(x[:1].repeat(4, 1, 1, 1))[:, 6:]
    assert same.abs().max() < 1e-3


def _stddev_by_loop(x: torch.Tensor, group_size: int, num_features: int) -> torch.Tensor:
    """ProGAN section 3 / the reference code's grouping, one sample at a time: with G the largest
    divisor of N not above ``group_size`` and M = N / G, sample i's group is {j : j = i (mod M)}; its
    statistic per feature slice is the mean over channels and pixels of the group's (biased) std."""
    n, c = x.shape[:2]
    g = max(s for s in range(1, min(group_size, n) + 1) if n % s == 0)
    m = n // g
    out = torch.empty(n, num_features)
    for i in range(n):
        members = [j for j in range(n) if j % m == i % m]
        assert len(members) == g
        group = x[members].double()                                          # [G, C, H, W]
        for f in range(num_features):
            part = group[:, f * c // num_features:(f + 1) * c // num_features]
            out[i, f] = (part.var(dim=0, unbiased=False) + 1e-8).sqrt().mean().item()
    return out


@pytest.mark.parametrize("n,group_size,num_features", [(8, 4, 1), (8, 4, 2), (12, 4, 1), (6, 4, 2), (5, 4, 1),
                                                       (4, 4, 1), (16, 8, 2)])
def test_minibatch_stddev_every_sample_gets_its_own_groups_statistic(n, group_size, num_features):
    """Every sample, not only the first: a wrong group assignment for any of them changes its channels."""
    torch.manual_seed(n + group_size)
    x = torch.randn(n, 6, 3, 3) * torch.linspace(0.5, 3.0, n).view(-1, 1, 1, 1)  # groups differ in spread
    y = MinibatchStdDev(group_size=group_size, num_features=num_features)(x)
    stat = y[:, 6:]
    assert torch.all(stat == stat[:, :, :1, :1])  # replicated over pixels
    torch.testing.assert_close(stat[:, :, 0, 0], _stddev_by_loop(x, group_size, num_features), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_handles_batches_not_divisible_by_group():
    y = MinibatchStdDev(group_size=4)(torch.randn(6, 4, 4, 4))
    assert y.shape == (6, 5, 4, 4) and torch.isfinite(y).all()


def test_adain_output_has_style_mean_and_std_per_channel():
    torch.manual_seed(0)
    adain = AdaIN(8, 16)
    with torch.no_grad():
        adain.affine.weight.normal_()
        adain.affine.bias.normal_()
    x = torch.randn(3, 8, 16, 16) * 4 + 2
    w = torch.randn(3, 16)
    y = adain(x, w)
    style = adain.affine(w)
    scale, bias = style[:, :8], style[:, 8:]
    torch.testing.assert_close(y.mean(dim=(2, 3)), bias, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-3, rtol=1e-3)


def test_adain_starts_as_identity_style():
    adain = AdaIN(4, 8)
    style = adain.affine(torch.zeros(2, 8))
    torch.testing.assert_close(style, torch.cat([torch.ones(2, 4), torch.zeros(2, 4)], dim=1))


def test_noise_injection_is_per_channel_and_starts_at_zero():
    layer = NoiseInjection(3)
    x, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(layer(x, noise), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 1.0, 2.0]))
    y = layer(x, noise)
    torch.testing.assert_close(y - x, torch.cat([0 * noise, noise, 2 * noise], dim=1))


def test_mapping_network_normalizes_z():
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 16, num_layers=2)
    z = torch.randn(4, 16)
    torch.testing.assert_close(mapping(z), mapping(z * 37.0), atol=1e-5, rtol=1e-5)


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    return x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()


def test_conditional_mapping_reads_the_normalized_z_and_embedding():
    """Section 2 normalizes z before the MLP; the conditional mapping (stylegan2-ada) reads
    ``[normalize(z), normalize(e(y))]`` with ``e`` an equalized linear layer (gain 1) on the one-hot label.
    Built here in float64 from the raw parameters, each layer ``lrelu_0.2(x (W c lr)^T + b lr)`` with
    He's ``c = sqrt(2 / fan_in)`` and ``lr = 0.01``; scaling z by a positive constant leaves w unchanged."""
    torch.manual_seed(0)
    classes, latent, w_dim = 3, 16, 8
    mapping = MappingNetwork(latent, w_dim, num_layers=2, lr_multiplier=0.01, num_classes=classes)
    with torch.no_grad():
        for name, param in mapping.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.5 / (0.01 if name.startswith("layers") else 1.0))
    z, labels = torch.randn(4, latent) * 3.0, torch.tensor([0, 2, 1, 2])
    embed = mapping.embed.linear
    e = embed.weight.double()[:, labels].T / math.sqrt(classes) + embed.bias.double()   # one-hot @ W^T
    x = torch.cat([_unit_rms(z.double()), _unit_rms(e)], dim=1)
    for layer in mapping.layers:
        weight = layer.weight.double() * math.sqrt(2.0 / x.shape[1]) * 0.01
        x = F.leaky_relu(x @ weight.T + layer.bias.double() * 0.01, 0.2)
    w = mapping(z, labels)
    torch.testing.assert_close(w.double(), x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mapping(z * 0.05, labels), w, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mapping(z * 37.0, labels), w, rtol=1e-4, atol=1e-5)


def test_adain_by_hand_from_the_raw_parameters():
    """Eq. 1, ``AdaIN(x, w) = y_s (x - mu(x)) / sigma(x) + y_b`` with ``(y_s, y_b) = A(w)``, in float64.
    A is an equalized dense layer with gain 1 (StyleGAN's style_mod: ``dense(..., gain=1)``), so its
    effective weight is ``W / sqrt(w_dim)``: ``A(w) = w (W / sqrt(w_dim))^T + b``."""
    torch.manual_seed(0)
    channels, w_dim = 8, 16
    adain = AdaIN(channels, w_dim)
    with torch.no_grad():
        adain.affine.weight.normal_()
        adain.affine.bias.normal_()
    x, w = torch.randn(3, channels, 5, 7) * 4 + 2, torch.randn(3, w_dim)
    style = w.double() @ (adain.affine.weight.double() / math.sqrt(w_dim)).T + adain.affine.bias.double()
    scale, bias = style[:, :channels, None, None], style[:, channels:, None, None]
    xd = x.double()
    normalized = (xd - xd.mean(dim=(2, 3), keepdim=True)) / (xd.var(dim=(2, 3), unbiased=False, keepdim=True)
                                                             + 1e-8).sqrt()
    torch.testing.assert_close(adain(x, w).double(), scale * normalized + bias, rtol=1e-5, atol=1e-5)


# --- StyleGAN's [1 2 1] blur: replicate (the bundled weights) or zero padding (NVIDIA's blur2d) ---------------
def _blur_by_shifts(x: np.ndarray, padding: str) -> np.ndarray:
    """The separable [1, 2, 1] / 4 filter along H, then W, with explicit border values (float64, no conv):
    ``y[i] = (x[i-1] + 2 x[i] + x[i+1]) / 4`` where x outside the image is 0 (zero) or the edge pixel."""
    mode = "constant" if padding == "zero" else "edge"
    for axis in (-2, -1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 1)
        p = np.pad(x, pad, mode=mode)
        n = x.shape[axis]
        take = lambda start: np.take(p, range(start, start + n), axis=axis)  # noqa: E731
        x = (take(0) + 2 * take(1) + take(2)) / 4
    return x


def test_blur_zero_padding_by_hand():
    # ones: an interior pixel keeps 16/16, an edge pixel loses the row beyond it (12/16), a corner loses 7/16
    y = Blur(padding="zero")(torch.ones(1, 1, 4, 4))[0, 0]
    expected = torch.tensor([[9, 12, 12, 9], [12, 16, 16, 12], [12, 16, 16, 12], [9, 12, 12, 9]]) / 16
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-7)
    # an impulse in the corner spreads the kernel's visible quarter: 4, 2, 2, 1 sixteenths
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0
    expected = torch.zeros(4, 4)
    expected[:2, :2] = torch.tensor([[4.0, 2.0], [2.0, 1.0]]) / 16
    torch.testing.assert_close(Blur(padding="zero")(x)[0, 0], expected, rtol=0, atol=1e-7)
    # replicate sees the corner pixel again beyond both edges: (1 + 2 + 2 + 4) / 16, and ones stay ones
    assert Blur(padding="replicate")(x)[0, 0, 0, 0].item() == pytest.approx(9 / 16)
    torch.testing.assert_close(Blur()(torch.ones(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))


@pytest.mark.parametrize("padding", ["zero", "replicate"])
def test_blur_matches_separable_filter_with_explicit_borders(padding):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6)  # odd, non-square: rows and columns are not mixed up
    expected = _blur_by_shifts(x.double().numpy(), padding)
    torch.testing.assert_close(Blur(padding=padding)(x).double(), torch.from_numpy(expected), rtol=0, atol=1e-6)
    assert Blur(padding=padding)(x.to(torch.bfloat16)).dtype == torch.bfloat16  # the kernel follows the input


def test_blur_replicate_is_the_default_and_unchanged():
    """The code the bundled weights were trained with (before the option existed), bit for bit."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    k = torch.tensor([1.0, 2.0, 1.0])
    kernel = (k[:, None] * k[None, :] / 16.0).expand(4, 1, 3, 3)
    before = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=4)
    assert Blur().padding == "replicate"
    assert torch.equal(Blur()(x), before)
    with pytest.raises(ValueError, match="blur padding must be one of"):
        Blur(padding="reflect")


@pytest.mark.parametrize("conv", [False, True])
def test_styled_layer_adds_noise_and_bias_before_the_activation_then_adain(conv):
    """Figure 1b: ``conv 3x3 -> + noise (B) -> + bias -> leaky ReLU -> AdaIN(w) (A)``, built here in float64 from
    the raw parameters. A fresh layer's noise strengths and biases are 0, where moving either after the
    activation changes nothing; here both are trained-like (non-zero, of both signs)."""
    torch.manual_seed(0)
    cin, cout, w_dim = (4 if conv else 6), 6, 16
    layer = StyledLayer(cin, cout, w_dim, conv=conv).double()
    with torch.no_grad():
        layer.noise.weight.normal_(0, 0.7)
        layer.bias.normal_(0, 0.7)
        layer.adain.affine.weight.normal_()
        layer.adain.affine.bias.normal_()
    x, w, noise = torch.randn(3, cin, 5, 5, dtype=torch.float64), torch.randn(3, w_dim, dtype=torch.float64), \
        torch.randn(3, 1, 5, 5, dtype=torch.float64)
    y = F.conv2d(x, layer.conv.weight * math.sqrt(2 / (cin * 9)), padding=1) if conv else x
    y = y + layer.noise.weight.view(1, -1, 1, 1) * noise + layer.bias.view(1, -1, 1, 1)
    y = torch.where(y >= 0, y, 0.2 * y)
    style = w @ (layer.adain.affine.weight / math.sqrt(w_dim)).T + layer.adain.affine.bias
    scale, shift = style[:, :cout, None, None], style[:, cout:, None, None]
    y = (y - y.mean(dim=(2, 3), keepdim=True)) / (y.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-8).sqrt()
    with torch.no_grad():
        torch.testing.assert_close(layer(x, w, noise), scale * y + shift, rtol=1e-6, atol=1e-6)
