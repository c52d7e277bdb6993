"""Augmentation (DiffAugment, ADA): properties derived independently of the code.

- p = 0 is the identity; each transform matches a direct per-pixel construction of its definition;
- gradients: numerical gradcheck through every transform, and G receives gradients through them;
- D sees every image augmented exactly once, in the D, G and regularization steps;
- the ADA controller follows its closed form, and p rises when a discriminator overfits; a checkpoint
  restores p and its running sums.

Lazy regularization is in test_lazy_regularization.py.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from families import FAMILIES
from progan.training.augment import (ADA_SIGN_LOSSES, POLICIES, AdaAugment, AdaptiveController, Augment,
                                     brightness, build_augment, check_ada_loss, contrast, cutout, parse_policy,
                                     saturation, translate)
from progan.training.step import discriminator_step, generator_step, regularization_step

from critics import make_ctx

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


# --- through the training step ----------------------------------------------------------------------

class _Tagging:
    """Wraps an Augment: marks its outputs and refuses to augment an already-augmented tensor."""

    def __init__(self, augment):
        self.augment, self.outputs, self.kept, self.calls = augment, set(), [], 0

    def __call__(self, x):
        assert id(x) not in self.outputs, "an augmented image was augmented again"
        self.calls += 1
        out = self.augment(x)
        self.outputs.add(id(out))
        self.kept += [x, out]  # alive until the test ends, so no other tensor can reuse their ids
        return out


class _CheckedD(nn.Module):
    def __init__(self, inner, tagging):
        super().__init__()
        self.inner, self.tagging, self.calls = inner, tagging, 0

    def forward(self, x, **kwargs):
        assert id(x) in self.tagging.outputs, "D saw an image that was not augmented"
        self.calls += 1
        return self.inner(x, **kwargs)


@pytest.mark.parametrize("loss", ["wgan_gp", "logistic_r1"])
def test_every_d_input_is_augmented_exactly_once(family, loss):
    torch.manual_seed(0)
    config = family.presets["tiny"]
    g = family.generator_cls(config)
    tagging = _Tagging(Augment(ALL, p=1.0))
    d = _CheckedD(family.discriminator_cls(config), tagging)
    ctx = make_ctx(g, d, loss, stage=2, latent_dim=config.latent_dim, augment=tagging)
    reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
    discriminator_step(ctx, reals)
    regularization_step(ctx, reals, 4)
    generator_step(ctx, 4, 1)
    # D step: reals, fakes (+ interpolates for WGAN-GP); penalty step: 1 input; G step: 1 input
    assert d.calls == tagging.calls == (3 if loss == "wgan_gp" else 2) + 1 + 1


def test_generator_gets_gradients_through_the_augmentation(family):
    torch.manual_seed(0)
    config = family.presets["tiny"]
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    for policy in (*ALL, "ada"):
        g.zero_grad(set_to_none=True)
        augment = AdaAugment(p=1.0) if policy == "ada" else Augment((policy,))
        ctx = make_ctx(g, d, family.default_loss, stage=2, latent_dim=config.latent_dim, augment=augment)
        generator_step(ctx, 4, 1)
        grads = [p.grad for p in g.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads), policy
        assert sum(gr.abs().sum() for gr in grads) > 0, policy


# --- ADA ----------------------------------------------------------------------------------------------

def test_controller_closed_form():
    c = AdaptiveController(target=0.6, interval=4, speed_kimg=1.0)
    for _ in range(5):                                   # r_t = 1 > 0.6: +128 / 1000 each time
        assert c.adjust(128.0, 128) == 1.0
    assert c.p == pytest.approx(5 * 0.128)
    c.adjust(0.6 * 100, 100)                             # exactly on target: no change
    assert c.p == pytest.approx(0.64)
    for _ in range(10):                                  # r_t = -1: down, clamped at 0
        c.adjust(-128.0, 128)
    assert c.p == 0.0
    c.p = 0.99
    c.adjust(500.0, 500)
    assert c.p == 1.0                                    # clamped at 1


def test_controller_leaves_p_alone_after_an_interval_without_images():
    """count 0 (no real image seen in the interval): r_t is undefined (NaN) and p stays; count 1 moves p by 1 / 1000 kimg."""
    c = AdaptiveController(target=0.6, speed_kimg=1.0, p=0.5)
    r_t = c.adjust(0.0, 0)
    assert r_t != r_t and c.p == 0.5
    assert c.adjust(1.0, 1) == 1.0 and c.p == pytest.approx(0.5 + 1 / 1000)


def test_p_follows_the_speed_formula_while_a_real_discriminator_overfits():
    """D trained alone on 8 fixed reals against an untrained G learns to call every real real. Every
    adjustment must move p by exactly sign(r_t - 0.6) * 32 / (speed * 1000), and p ends up higher."""
    torch.manual_seed(0)
    family = FAMILIES["stylegan_lite"]
    config = family.presets["tiny"]
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    augment = AdaAugment(p=0.0)
    ctx = make_ctx(g, d, "logistic_r1", stage=1, latent_dim=config.latent_dim, augment=augment)
    reals = [torch.rand(8, 3, 8, 8) * 2 - 1]
    controller = AdaptiveController(interval=4, speed_kimg=0.5)
    signs, moves = [], []
    for step in range(1, 61):
        terms = discriminator_step(ctx, reals)
        opt.step()
        opt.zero_grad(set_to_none=True)
        signs.append(float(terms["real_sign"]) * 8)
        if step % controller.interval == 0:
            before = controller.p
            r_t = controller.adjust(sum(signs), 8 * len(signs))
            assert r_t == pytest.approx(sum(signs) / 32)
            augment.p = controller.p
            signs.clear()
            moves.append((r_t, before, controller.p))
    step = 32 / 500
    for r_t, before, after in moves:
        direction = (r_t > 0.6) - (r_t < 0.6)
        assert after == pytest.approx(min(max(before + direction * step, 0.0), 1.0)), (r_t, before, after)
    assert moves[-1][2] >= 0.3 and sum(r_t > 0.6 for r_t, _, _ in moves) > len(moves) / 2


class _ScriptedD(nn.Module):
    """Wraps D; scores image i of every batch ``signs[i % len(signs)]`` (times 1 + 0 * D(x): graph kept)."""

    def __init__(self, inner: nn.Module, signs: list[float]):
        super().__init__()
        self.inner, self.signs = inner, signs

    def forward(self, x, **kwargs):
        scores = torch.tensor(self.signs * (x.shape[0] // len(self.signs) + 1))[:x.shape[0]].view(-1, 1)
        return scores + 0 * self.inner(x, **kwargs)


@pytest.mark.parametrize("signs,start,direction", [([1.0, 1.0, 1.0, 1.0], 0.0, +1),   # overconfident: r_t = 1
                                                    ([1.0, 1.0, 1.0, -1.0], 0.5, -1),  # r_t = 0.5: just below 0.6
                                                    ([-1.0], 0.5, -1)])                # r_t = -1
def test_trainer_moves_p_by_the_papers_speed_toward_the_target(tmp_path, signs, start, direction):
    """The trainer's loop (sign sums, interval, controller, augmentation): 8 steps of 4 reals, interval 2,
    --ada-kimg 0.1: four adjustments of 8 / 100 each, up when r_t > 0.6, down when below, after every
    second step only (p logged every step: adjusting every step by 4 / 100 would end at the same p)."""
    import json

    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         kimg=0.032, batch_size=4, workers=0, augment="ada", ada_interval=2, ada_kimg=0.1,
                         progressive=False, checkpoint_kimg=10, sample_kimg=10, log_every=1)
    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    assert isinstance(trainer.augment, AdaAugment)
    trainer.discriminator = _ScriptedD(trainer.discriminator, signs)
    trainer.ada.p = trainer.augment.p = start
    trainer.train()
    expected = [min(max(start + direction * 0.08 * (step // 2), 0.0), 1.0) for step in range(1, 9)]
    logged = [r["augment_p"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
              if "augment_p" in r]
    assert logged == pytest.approx(expected)
    assert trainer.ada.p == trainer.augment.p == pytest.approx(expected[-1])


@pytest.mark.parametrize("policy", ["translation", "color,cutout"])
def test_trainer_augments_with_its_policy(tmp_path, policy):
    """``--augment diffaugment --augment-policy P``: the trainer's augmentation runs P's transforms,
    not the default "color,translation,cutout": under one seed it gives exactly what DiffAugment with P
    alone gives, and not what the default policy gives."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, workers=0, augment="diffaugment", augment_policy=policy)
    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    x = torch.rand(4, 3, 16, 16) * 2 - 1

    def augmented(augment):
        torch.manual_seed(0)
        return augment(x.clone())

    assert trainer.augment.policy == tuple(policy.split(","))
    torch.testing.assert_close(augmented(trainer.augment), augmented(Augment(tuple(policy.split(",")))),
                               rtol=0, atol=0)
    assert not torch.allclose(augmented(trainer.augment), augmented(build_augment("diffaugment")))


def test_ada_is_refused_with_a_loss_whose_sign_means_nothing():
    from families import FAMILIES as families
    from progan.training.options import FAMILY_LOSS, TrainConfig

    assert FAMILY_LOSS == {name: f.default_loss for name, f in families.items()}
    with pytest.raises(ValueError, match=r"--augment ada cannot be used with --loss wgan_gp: .*sign D\(real\)"):
        TrainConfig(family="stylegan_lite", loss="wgan_gp", augment="ada")
    with pytest.raises(ValueError, match="--loss wgan_gp"):          # ProGAN's default loss is WGAN-GP
        TrainConfig(family="progan", augment="ada")
    for adversarial in sorted(ADA_SIGN_LOSSES):  # every loss whose D-score sign means real/fake, any penalty
        for penalty in ("none", "r1", "dragan"):
            check_ada_loss(f"{adversarial}+{penalty}")
            TrainConfig(family="progan", loss=adversarial, penalty=penalty, augment="ada")
    check_ada_loss("logistic_r1")                                     # the StyleGAN recipe
    for objective in ("wgan+wgan_gp", "wgan+r1", "wgan+dragan"):      # a critic, whatever its penalty
        with pytest.raises(ValueError, match="WGAN critic"):
            check_ada_loss(objective)
    TrainConfig(family="progan", loss="wgan_gp", augment="diffaugment")
    assert isinstance(build_augment("ada"), AdaAugment) and build_augment("ada").p == 0.0
    assert isinstance(build_augment("diffaugment"), Augment) and build_augment("none") is None


def test_train_py_refuses_ada_under_wgan_gp_in_one_line_and_the_demo_recipe_still_parses(capsys):
    import train

    assert train.main(["--family", "stylegan_lite", "--preset", "demo-64", "--augment", "ada", "--dry-run",
                       "--no-estimate-memory"]) == 2                   # demo-64's recipe loss is wgan_gp
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --augment ada cannot be used with --loss wgan_gp") and "\n" not in err
    assert train.main(["--family", "stylegan_lite", "--preset", "demo-64", "--dry-run", "--no-estimate-memory"]) == 0


def test_checkpoint_restores_ada_p_and_its_running_sums(tmp_path):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, workers=0, augment="ada")

    def build():
        return Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                       accelerator=Accelerator(cpu=True))

    first = build()
    first.ada.p = first.augment.p = 0.37
    first._ada_signs += torch.tensor([5.0, 12.0], dtype=torch.float64)
    first.save()
    second = build()
    assert isinstance(second.augment, AdaAugment) and second.augment.p == 0.0
    assert second.try_resume() is not None
    assert second.ada.p == second.augment.p == 0.37
    assert second._ada_signs.tolist() == [5.0, 12.0]


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
