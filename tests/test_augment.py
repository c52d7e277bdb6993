"""DiffAugment's transforms and their masks: properties derived independently of the code.

- p = 0 is the identity; each transform matches a direct per-pixel construction of its definition, on
  square and non-square images;
- each transform applies to a fraction p of the images; gradients: numerical gradcheck through every transform.

Augmentation in the training step, the ADA controller and the trainer are in test_augment_training.py;
ADA's bgc pipeline is in test_ada.py.
"""
from __future__ import annotations

import pytest
import torch

from progan.training.augment import (POLICIES, Augment, brightness, contrast, cutout, parse_policy, saturation,
                                     translate)

ALL = ("color", "translation", "cutout")
TRANSFORMS = [brightness, saturation, contrast, translate, cutout]


# --- the transforms ---------------------------------------------------------------------------------

def test_p_zero_is_the_identity_and_an_all_false_mask_changes_nothing():
    x = torch.randn(5, 3, 8, 8)
    assert Augment(ALL, p=0.0)(x) is x
    none = torch.zeros(5, dtype=torch.bool)
    for transform in TRANSFORMS:
        assert torch.equal(transform(x, none), x), transform.__name__


def test_p_one_draws_no_masks_and_a_draw_equal_to_p_selects_no_image(monkeypatch):
    """p = 1 is DiffAugment itself: the output and the random stream after it are those of the transforms
    applied with no mask. Below 1, ``rand < p`` selects an image (rand is uniform on [0, 1): probability
    exactly p), so a draw of exactly p leaves every image alone."""
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    out, after = Augment(ALL, p=1.0)(x), torch.get_rng_state()
    torch.manual_seed(0)
    expected = x
    for name in ALL:
        for transform in POLICIES[name]:
            expected = transform(expected)
    assert torch.equal(out, expected) and torch.equal(after, torch.get_rng_state())
    monkeypatch.setattr(torch, "rand", lambda *size, device=None, dtype=None, **_: torch.full(
        tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size, 0.25, device=device, dtype=dtype))
    assert torch.equal(Augment(ALL, p=0.25)(x), x)


def test_each_transform_applies_to_a_fraction_p_of_the_images():
    """Cutout always changes an all-ones image, so the changed fraction estimates p (2000 draws: sigma ~ 0.01)."""
    torch.manual_seed(0)
    for p in (0.3, 0.8):
        out = Augment(("cutout",), p=p)(torch.ones(2000, 1, 8, 8))
        changed = (out != 1).flatten(1).any(dim=1).float().mean().item()
        assert abs(changed - p) < 0.04, (p, changed)


def test_translation_and_cutout_match_a_pixel_loop():
    """Rebuild each output pixel from the definition: shifted source pixel or 0; a zeroed square."""
    x = torch.randn(6, 2, 8, 8)
    torch.manual_seed(3)
    out = translate(x)
    torch.manual_seed(3)
    dy = torch.randint(-1, 2, (6, 1, 1)).flatten().tolist()  # ratio 1/8 of 8 px: shifts in [-1, 1]
    dx = torch.randint(-1, 2, (6, 1, 1)).flatten().tolist()
    expected = torch.zeros_like(x)
    for n in range(6):
        for i in range(8):
            for j in range(8):
                si, sj = i - dy[n], j - dx[n]
                if 0 <= si < 8 and 0 <= sj < 8:
                    expected[n, :, i, j] = x[n, :, si, sj]
    assert torch.equal(out, expected)


def test_cutout_zeroes_one_square_of_half_the_side_clipped_only_by_the_border():
    """Each hole is one solid axis-aligned rectangle: 4 px on a side of an 8 px image, shorter (at least
    2 px: the centre stays inside) only where it touches the border; over many draws it goes everywhere."""
    torch.manual_seed(0)
    holes = cutout(torch.ones(300, 1, 8, 8))[:, 0] == 0                   # [N, H, W]
    for hole in holes:
        rows, cols = hole.any(dim=1).nonzero().flatten(), hole.any(dim=0).nonzero().flatten()
        top, bottom, left, right = rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()
        box = torch.zeros_like(hole)
        box[top:bottom + 1, left:right + 1] = True
        assert torch.equal(hole, box), "the hole is not one solid rectangle"
        for lo, hi in ((top, bottom), (left, right)):
            side = hi - lo + 1
            assert side == 4 or (2 <= side < 4 and (lo == 0 or hi == 7)), (lo, hi)
    assert holes.any(dim=0).all()                       # over many draws every pixel gets cut somewhere
    # the centre is uniform over the 9 corner-aligned positions per axis; 5 of them keep the square whole
    assert (holes.sum(dim=(1, 2)) == 16).float().mean().item() == pytest.approx(25 / 81, abs=0.08)



def test_an_odd_sided_cutout_is_centred_on_a_pixel_of_the_image():
    """6x10 image: the hole is 3 by 5 (odd), centred on one of the image's own pixels (DiffAugment), so every
    image loses at least the centre and the half-side after it: rows >= 2, columns >= 3, never an empty hole;
    a centre beyond the border would clip it to 1 row (or none)."""
    torch.manual_seed(0)
    holes = cutout(torch.ones(400, 1, 6, 10))[:, 0] == 0                  # [N, H, W]
    rows, cols = holes.any(dim=2).sum(dim=1), holes.any(dim=1).sum(dim=1)
    assert set(rows.tolist()) == {2, 3} and set(cols.tolist()) == {3, 4, 5}
    # whole in both axes when the centre is in rows 1..4 and columns 2..7: 4/6 * 6/10
    assert ((rows == 3) & (cols == 5)).float().mean().item() == pytest.approx(0.4, abs=0.08)

def test_color_transforms_follow_their_definitions():
    x = torch.rand(4, 3, 5, 5) * 2 - 1
    torch.manual_seed(0)
    shift = torch.rand(4, 1, 1, 1) - 0.5
    torch.manual_seed(0)
    assert torch.allclose(brightness(x), x + shift)
    torch.manual_seed(1)
    factor = torch.rand(4, 1, 1, 1) * 2                # DiffAugment: saturation factor in [0, 2)
    torch.manual_seed(1)
    mean = x.mean(dim=1, keepdim=True)
    assert torch.allclose(saturation(x), (x - mean) * factor + mean, atol=1e-6)
    torch.manual_seed(2)
    factor = torch.rand(4, 1, 1, 1) + 0.5              # contrast factor in [0.5, 1.5)
    torch.manual_seed(2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(contrast(x), (x - mean) * factor + mean, atol=1e-6)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.__name__)
def test_gradcheck_through_each_transform(transform):
    """Analytic gradients equal finite differences (the random draw is fixed by reseeding)."""
    x = torch.randn(3, 2, 8, 8, dtype=torch.double, requires_grad=True)
    mask = torch.tensor([True, False, True])

    def fixed(inp):
        torch.manual_seed(7)
        return transform(inp, mask)

    assert torch.autograd.gradcheck(fixed, (x,))


def test_policy_parsing_is_strict():
    assert parse_policy("translation, color") == ("translation", "color")
    for bad in ("", "colour", "color,color"):
        with pytest.raises(ValueError, match="--augment-policy"):
            parse_policy(bad)
    assert set(POLICIES) == set(ALL)


@pytest.mark.parametrize("h, w, max_dy, max_dx", [(8, 16, 1, 2), (12, 20, 2, 3)])
def test_translation_and_cutout_sizes_follow_each_axis_of_a_non_square_image(h, w, max_dy, max_dx):
    """On 8x16 images the shift range is 1/8 of each side (rows +-1, columns +-2), drawn rows first, and
    cutout's hole is half of each side (4 rows by 8 columns): a square image hides a swapped axis. On 12x20
    the eighths 1.5 and 2.5 round half up (DiffAugment's int(x + 0.5)) to +-2 and +-3; the hole is 6 by 10."""
    n = 40
    x = torch.randn(n, 2, h, w)
    torch.manual_seed(5)
    out = translate(x)
    torch.manual_seed(5)
    dy = torch.randint(-max_dy, max_dy + 1, (n,)).tolist()
    dx = torch.randint(-max_dx, max_dx + 1, (n,)).tolist()
    assert {-max_dx, max_dx} <= set(dx)                        # the draw reaches the wider range
    expected = torch.zeros_like(x)
    for k in range(n):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy[k] < h and 0 <= j - dx[k] < w:
                    expected[k, :, i, j] = x[k, :, i - dy[k], j - dx[k]]
    assert torch.equal(out, expected)
    torch.manual_seed(0)
    holes = cutout(torch.ones(300, 1, h, w))[:, 0] == 0                   # [N, H, W]
    rows, cols = holes.any(dim=2).sum(dim=1), holes.any(dim=1).sum(dim=1)  # the hole's extent per axis
    assert rows.max().item() == h // 2 and cols.max().item() == w // 2


def test_every_transform_runs_on_the_devices_batch():
    """A tensor created without ``device=`` lands on the CPU; on a GPU it then crashes or moves work off
    the GPU. A batch on the ``meta`` device makes any such tensor raise here, without a GPU."""
    x = torch.empty(4, 3, 8, 6, device="meta")
    mask = torch.ones(4, dtype=torch.bool, device="meta")
    for transform in TRANSFORMS:
        for y in (transform(x), transform(x, mask)):
            assert (y.device.type, y.shape, y.dtype) == ("meta", x.shape, x.dtype), transform.__name__
    for p in (0.5, 1.0):                                                # drawn masks, then none
        y = Augment(ALL, p=p)(x)
        assert (y.device.type, y.shape) == ("meta", x.shape)
