"""ADA's bgc pipeline (Karras et al. 2020, appendix B) against the definitions of its transforms.

Expected values are built independently of the matrices: torch.flip/rot90, per-pixel loops with
reflection, ramp images whose value is their own coordinate (bilinear sampling of a linear ramp returns
the sampled coordinate exactly, so the output *is* the source coordinate of each output pixel), and
colour invariants (luma = channel mean; chroma = the rest).
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from progan.training.ada import (GROUPS, IDENTITY, MULTIPLIERS, AdaAugment, Strengths, apply_color, augment_with,
                                 color_matrix, draw_parameters)

N = 3


def _full(name: str, value) -> torch.Tensor:
    shape = (N, 2) if name in ("xint", "xfrac") else (N,)
    return torch.tensor(value, dtype=torch.float32).expand(shape).clone()


def _reflect(k: float, size: int) -> float:
    """Reflection about the border pixel centres 0 and size - 1 (numpy/torch 'reflect' padding)."""
    period = 2 * (size - 1)
    k = abs(k) % period
    return period - k if k > size - 1 else k


def _ramps(h: int, w: int) -> torch.Tensor:
    """[N, 2, H, W]: channel 0 holds x (column), channel 1 holds y (row)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys]).expand(N, 2, h, w).clone()


# --- blit ---------------------------------------------------------------------------------------------

def test_xflip_mirrors_and_rotate90_rotates_clockwise_on_screen():
    x = torch.randn(N, 3, 6, 6)
    assert torch.allclose(augment_with(x, {"xflip": _full("xflip", 1.0)}), x.flip(3), atol=1e-5)
    for k in range(4):  # k quarter turns; y points down, so (1, 0) -> (0, 1) is clockwise on screen
        out = augment_with(x, {"rotate90": _full("rotate90", float(k))})
        assert torch.allclose(out, torch.rot90(x, k, dims=(3, 2)), atol=1e-5), k


@pytest.mark.parametrize("tx,ty", [(3, -2), (-5, 4), (0, 1)])
def test_integer_translation_shifts_by_the_drawn_amount_with_reflection(tx, ty):
    x = torch.randn(N, 2, 7, 8)
    out = augment_with(x, {"xint": _full("xint", [float(tx), float(ty)])})
    expected = torch.empty_like(x)
    for i in range(7):
        for j in range(8):
            expected[:, :, i, j] = x[:, :, int(_reflect(i - ty, 7)), int(_reflect(j - tx, 8))]
    assert torch.allclose(out, expected, atol=1e-5)


def test_drawn_integer_translations_are_whole_pixels_within_an_eighth():
    torch.manual_seed(0)
    t = draw_parameters(4000, 1.0, height=16, width=32, groups=("blit",))["xint"]
    assert torch.equal(t, t.round())
    assert t[:, 0].abs().max() == 4 and t[:, 1].abs().max() == 2          # 0.125 * 32, 0.125 * 16
    # uniform in +- an eighth: every whole pixel of both signs is drawn (the ends, +-4, each 1/16 of the time)
    assert set(t[:, 0].tolist()) == set(range(-4, 5)) and set(t[:, 1].tolist()) == set(range(-2, 3))


def test_drawn_rotations_and_fractional_translations_have_the_papers_spread():
    # rotations uniform in +- pi (mean 0, variance pi^2 / 3); xfrac normal with std 0.125 * size per axis
    # (4 px of 32 in x, 2 px of 16 in y). n = 20000: the mean's std is 1.8 / sqrt(n) = 0.013, a std's 0.5 %
    torch.manual_seed(0)
    t = draw_parameters(20000, 1.0, height=16, width=32, groups=("geom",))
    for name in ("rotate_pre", "rotate_post"):
        assert t[name].abs().max() <= math.pi and abs(t[name].mean().item()) < 0.07
        assert t[name].var().item() == pytest.approx(math.pi ** 2 / 3, rel=0.04)
    assert t["xfrac"].mean(0).abs().max() < 0.1
    torch.testing.assert_close(t["xfrac"].std(0), torch.tensor([4.0, 2.0]), rtol=0.04, atol=0)


# --- geom: one composed matrix against a per-pixel construction ------------------------------------------

def test_arbitrary_rotation_by_a_quarter_turn_equals_rotate90():
    x = torch.randn(N, 3, 6, 6)
    for name in ("rotate_pre", "rotate_post"):
        out = augment_with(x, {name: _full(name, math.pi / 2)})
        assert torch.allclose(out, torch.rot90(x, 1, dims=(3, 2)), atol=1e-5), name


def test_half_pixel_translation_averages_neighbours():
    x = torch.randn(N, 1, 5, 6)
    out = augment_with(x, {"xfrac": _full("xfrac", [0.5, 0.0])})
    assert torch.allclose(out[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, atol=1e-5)


FORWARD = {  # each transform's definition on a centred point (x right, y down)
    "xflip": lambda p, v: (-p[0], p[1]) if v else p,
    "rotate90": lambda p, v: FORWARD["rotate_pre"](p, v * math.pi / 2),
    "xint": lambda p, v: (p[0] + v[0], p[1] + v[1]),
    "scale": lambda p, v: (p[0] * v, p[1] * v),
    "rotate_pre": lambda p, v: (p[0] * math.cos(v) - p[1] * math.sin(v), p[0] * math.sin(v) + p[1] * math.cos(v)),
    "aniso": lambda p, v: (p[0] * v, p[1] / v),
    "rotate_post": lambda p, v: FORWARD["rotate_pre"](p, v),
    "xfrac": lambda p, v: (p[0] + v[0], p[1] + v[1]),
}
INVERSE = {  # undoing each one, point by point
    "xflip": lambda p, v: (-p[0], p[1]) if v else p,
    "rotate90": lambda p, v: FORWARD["rotate_pre"](p, -v * math.pi / 2),
    "xint": lambda p, v: (p[0] - v[0], p[1] - v[1]),
    "scale": lambda p, v: (p[0] / v, p[1] / v),
    "rotate_pre": lambda p, v: FORWARD["rotate_pre"](p, -v),
    "aniso": lambda p, v: (p[0] / v, p[1] * v),
    "rotate_post": lambda p, v: FORWARD["rotate_pre"](p, -v),
    "xfrac": lambda p, v: (p[0] - v[0], p[1] - v[1]),
}
ORDER = ("xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac")  # appendix B


def test_composed_geometric_matrix_matches_a_per_pixel_construction():
    """All eight geometric transforms at once on 9x7 ramps: each output pixel holds the (reflected) source
    coordinate obtained by undoing the transforms one at a time, last first; and applying the forward
    definitions in the paper's order to that source lands back on the output pixel."""
    h, w = 7, 9
    values = {"xflip": 1.0, "rotate90": 3.0, "xint": [1.0, -2.0], "scale": 0.8, "rotate_pre": 0.4, "aniso": 1.3,
              "rotate_post": -1.1, "xfrac": [0.3, -0.45]}
    out = augment_with(_ramps(h, w), {k: _full(k, v) for k, v in values.items()})
    cx, cy = (w - 1) / 2, (h - 1) / 2
    for i in range(h):
        for j in range(w):
            p = (j - cx, i - cy)
            for name in reversed(ORDER):
                p = INVERSE[name](p, values[name])
            back = p
            for name in ORDER:
                back = FORWARD[name](back, values[name])
            assert back == pytest.approx((j - cx, i - cy), abs=1e-9)
            expected = (_reflect(p[0] + cx, w), _reflect(p[1] + cy, h))
            assert out[:, 0, i, j].tolist() == pytest.approx([expected[0]] * N, abs=1e-4), (i, j)
            assert out[:, 1, i, j].tolist() == pytest.approx([expected[1]] * N, abs=1e-4), (i, j)


# --- colour -------------------------------------------------------------------------------------------

def _luma_chroma(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    luma = x.mean(dim=1, keepdim=True)      # projection on v = (1, 1, 1) / sqrt(3), per channel
    return luma, x - luma


def test_each_colour_transform_follows_its_definition():
    x = torch.rand(N, 3, 4, 5) * 2 - 1
    one = lambda name, v: augment_with(x, {name: _full(name, v)})  # noqa: E731
    assert torch.allclose(one("brightness", 0.3), x + 0.3, atol=1e-6)              # adds
    assert torch.allclose(one("contrast", 1.7), x * 1.7, atol=1e-6)                # scales about mid-grey 0
    luma, chroma = _luma_chroma(x)
    flipped_luma, flipped_chroma = _luma_chroma(one("lumaflip", 1.0))              # reflects along the luma axis
    assert torch.allclose(flipped_luma, -luma, atol=1e-6) and torch.allclose(flipped_chroma, chroma, atol=1e-6)
    assert torch.allclose(one("lumaflip", 0.0), x, atol=1e-6)
    for s in (0.0, 0.4, 2.5):                                                      # saturation scales chroma
        sat_luma, sat_chroma = _luma_chroma(one("saturation", s))
        assert torch.allclose(sat_luma, luma, atol=1e-6) and torch.allclose(sat_chroma, chroma * s, atol=1e-6)
    # hue rotates about the luma axis: a third of a turn permutes R, G, B cyclically, half a turn negates chroma
    assert torch.allclose(one("hue", 2 * math.pi / 3), x[:, [2, 0, 1]], atol=1e-5)
    hue_luma, hue_chroma = _luma_chroma(one("hue", math.pi))
    assert torch.allclose(hue_luma, luma, atol=1e-6) and torch.allclose(hue_chroma, -chroma, atol=1e-6)
    for theta in (0.3, -2.0):
        hue_luma, hue_chroma = _luma_chroma(one("hue", theta))
        assert torch.allclose(hue_luma, luma, atol=1e-6)
        assert torch.allclose(hue_chroma.norm(dim=1), chroma.norm(dim=1), atol=1e-5)
        cos = (hue_chroma * chroma).sum(dim=1) / (chroma.norm(dim=1) ** 2)
        assert torch.allclose(cos, torch.full_like(cos, math.cos(theta)), atol=1e-4)


def test_colour_matrix_composes_in_the_papers_order():
    """One 4x4 matrix equals brightness, contrast, luma flip, hue, saturation applied one after another."""
    x = torch.rand(N, 3, 4, 4) * 2 - 1
    values = {"brightness": -0.2, "contrast": 0.7, "lumaflip": 1.0, "hue": 1.2, "saturation": 0.5}
    y = x
    for name in GROUPS["color"]:
        y = apply_color(y, color_matrix({name: _full(name, values[name])}, N))
    assert torch.allclose(augment_with(x, {k: _full(k, v) for k, v in values.items()}), y, atol=1e-5)


# --- probabilities, identity, gradients -------------------------------------------------------------

def _applied(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v != IDENTITY[k]).reshape(v.shape[0], -1).any(dim=1).float() for k, v in params.items()}


def test_every_transform_has_its_own_mask():
    """p = 0.5: each continuous transform on ~half the images and any two together on ~a quarter (one shared
    mask would give a half); coin-flip transforms at half of that; rotation (pre or post) at p overall."""
    torch.manual_seed(0)
    n = 40000  # sigma of a frequency ~ 0.0025
    on = _applied(draw_parameters(n, 0.5, height=16, width=16))
    continuous = ["scale", "aniso", "xfrac", "brightness", "contrast", "hue", "saturation"]
    for name in continuous:
        assert on[name].mean().item() == pytest.approx(0.5, abs=0.015), name
    for a, b in itertools.combinations(continuous + ["rotate_pre", "rotate_post"], 2):
        joint, product = (on[a] * on[b]).mean().item(), on[a].mean().item() * on[b].mean().item()
        assert joint == pytest.approx(product, abs=0.015), (a, b)
    assert on["xflip"].mean().item() == pytest.approx(0.25, abs=0.015)
    assert on["lumaflip"].mean().item() == pytest.approx(0.25, abs=0.015)
    assert on["rotate90"].mean().item() == pytest.approx(0.375, abs=0.015)
    either = torch.maximum(on["rotate_pre"], on["rotate_post"]).mean().item()
    assert either == pytest.approx(0.5, abs=0.015)
    halved = _applied(draw_parameters(n, 0.5, height=16, width=16, groups=("color",),
                                      multipliers={**{k: 1.0 for k in GROUPS["color"]}, "brightness": 0.5}))
    assert halved["brightness"].mean().item() == pytest.approx(0.25, abs=0.015)


def test_p_zero_is_the_exact_identity():
    x = torch.randn(4, 3, 8, 8)
    assert AdaAugment(p=0.0)(x) is x
    params = draw_parameters(500, 0.0, height=8, width=8)
    assert not any(t.any() for t in _applied(params).values())


def test_a_uniform_draw_equal_to_the_probability_applies_nothing(monkeypatch):
    """A transform applies where ``rand < p * multiplier`` (rand uniform on [0, 1): probability exactly that);
    every draw made exactly 0 with p = 0, or exactly 0.25 with p = 0.25 and multipliers 1, applies nothing."""
    for value, p, multipliers in ((0.0, 0.0, MULTIPLIERS), (0.25, 0.25, {k: 1.0 for k in MULTIPLIERS})):
        monkeypatch.setattr(torch, "rand", lambda *size, device=None, v=value, **_: torch.full(size, v, device=device))
        params = draw_parameters(50, p, height=8, width=8, multipliers=multipliers)
        assert not any(t.any() for t in _applied(params).values()), value


def test_p_one_changes_every_image_and_keeps_shape_and_dtype():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    out = AdaAugment(p=1.0)(x.to(torch.bfloat16))
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    assert ((out.float() - x).abs().flatten(1).amax(dim=1) > 0.05).all()


def test_gradients_and_second_derivatives_pass_through_the_pipeline():
    """R1 and WGAN-GP differentiate D's input gradient again: gradcheck and gradgradcheck, draws fixed."""
    x = torch.rand(2, 3, 6, 6, dtype=torch.double, requires_grad=True)

    def fixed(inp):
        torch.manual_seed(5)
        return AdaAugment(p=0.8)(inp)

    assert torch.autograd.gradcheck(fixed, (x,))
    assert torch.autograd.gradgradcheck(fixed, (x,))


def test_colour_transforms_of_a_grayscale_image():
    """1-channel images: gray is pure luma, so brightness adds, contrast scales, lumaflip negates, hue and
    saturation leave it unchanged; and any colour matrix gives the mean of its RGB rows, i.e. the
    channel mean of the RGB result on the image copied to three channels."""
    x = torch.rand(N, 1, 4, 5) * 2 - 1
    one = lambda name, v: augment_with(x, {name: _full(name, v)})  # noqa: E731
    assert torch.allclose(one("brightness", 0.3), x + 0.3, atol=1e-6)
    assert torch.allclose(one("contrast", 1.7), x * 1.7, atol=1e-6)
    assert torch.allclose(one("lumaflip", 1.0), -x, atol=1e-6)
    for name, value in (("hue", 1.1), ("saturation", 0.3), ("saturation", 2.5), ("lumaflip", 0.0)):
        assert torch.allclose(one(name, value), x, atol=1e-5), name
    c = torch.eye(4).repeat(N, 1, 1)
    c[:, :3, :] += torch.randn(N, 3, 4) * 0.5                                     # any affine colour map
    rgb = apply_color(x.expand(-1, 3, -1, -1), c)
    assert torch.allclose(apply_color(x, c), rgb.mean(dim=1, keepdim=True), atol=1e-5)
    with pytest.raises(ValueError, match="need 1 or 3 channels, got 4"):
        apply_color(torch.zeros(N, 4, 2, 2), c)


def test_ada_augment_passes_its_groups_multipliers_and_strengths_on():
    """``AdaAugment`` draws with the groups, multipliers and strengths it holds (none of them the
    defaults here), on an image that is not square: the same as drawing them by hand, and not the same
    as the defaults would give."""
    x = torch.randn(8, 3, 12, 10)
    strengths = Strengths(xint_max=0.4, brightness_std=0.9, contrast_std=0.1, hue_max=0.3, saturation_std=0.2)
    multipliers = {**MULTIPLIERS, "xflip": 0.0, "hue": 0.5}
    options = {"groups": ("blit", "color"), "multipliers": multipliers, "strengths": strengths}
    torch.manual_seed(1)
    out = AdaAugment(p=0.7, **options)(x)
    torch.manual_seed(1)
    expected = augment_with(x, draw_parameters(8, 0.7, height=12, width=10, **options))
    torch.manual_seed(1)
    default = augment_with(x, draw_parameters(8, 0.7, height=12, width=10, groups=("blit", "color")))
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, default, atol=1e-3)


@pytest.mark.parametrize("channels", [3, 1])
def test_every_transform_runs_on_the_devices_batch(channels):
    """A tensor created without ``device=`` lands on the CPU; on a GPU it then crashes or moves work off
    the GPU. A batch on the ``meta`` device makes any such tensor raise here, without a GPU: every
    parameter and every matrix must come out on the batch's device, and the image keep its shape."""
    x = torch.empty(4, channels, 8, 6, device="meta")
    params = draw_parameters(4, 1.0, height=8, width=6, device=x.device)
    assert set(params) == set(IDENTITY)                                # every transform's parameter
    assert {v.device.type for v in params.values()} == {"meta"}
    y = AdaAugment(p=1.0)(x)                                            # every group, every transform drawn
    assert (y.device.type, y.shape, y.dtype) == ("meta", x.shape, x.dtype)
