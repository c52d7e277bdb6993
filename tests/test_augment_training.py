"""Augmentation in training: properties derived independently of the code.

- D sees every image augmented exactly once, in the D, G and regularization steps, and G receives
  gradients through the augmentation; instance noise goes on after the augmentation, as plain N(0, sigma^2);
- the ADA controller follows its closed form, and p rises when a discriminator overfits; the trainer
  moves p by the paper's speed and augments with its policy; a checkpoint restores p and its running sums;
- ADA is refused with a loss whose sign means nothing.

The transforms themselves are in test_augment.py; lazy regularization is in test_lazy_regularization.py.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from families import FAMILIES
from progan.training.augment import (ADA_SIGN_LOSSES, AdaAugment, AdaptiveController, Augment, build_augment,
                                     check_ada_loss)
from progan.training.step import discriminator_step, generator_step, regularization_step

from critics import ConstantG, SquareCritic, make_ctx

ALL = ("color", "translation", "cutout")


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


def test_instance_noise_goes_on_after_the_augmentation():
    """--augment with --instance-noise: D sees augment(x) + N(0, sigma^2) (step.py's order). With a contrast
    x -> 3x every image D sees (fakes 2.0, reals 0.0) has mean 3 * clean and noise of std sigma, not 3 * sigma;
    with DiffAugment's cutout the zeroed square carries the noise too, so no pixel D sees is exactly 0."""
    torch.manual_seed(0)
    shape, sigma = (3, 8, 8), 0.15
    d, g = SquareCritic(shape), ConstantG(shape)
    ctx = make_ctx(g, d, "logistic+none", augment=lambda x: 3 * x, instance_noise=sigma)
    discriminator_step(ctx, [torch.zeros(200, *shape)])
    generator_step(ctx, 200, 1)
    assert len(d.seen) == 3  # D step: fakes, reals; G step: fakes
    for seen, clean in zip(d.seen, (6.0, 0.0, 6.0)):
        assert seen.mean().item() == pytest.approx(clean, abs=0.01)
        assert (seen - clean).std().item() == pytest.approx(sigma, rel=0.03)  # 38,400 draws: ~0.4 % error
    d.seen.clear()
    ctx = make_ctx(g, d, "logistic+none", augment=Augment(("cutout",)), instance_noise=sigma)
    discriminator_step(ctx, [torch.ones(8, *shape)])
    generator_step(ctx, 8, 1)
    assert len(d.seen) == 3
    for seen, clean in zip(d.seen, (2.0, 1.0, 2.0)):
        assert (seen < clean / 2).any()  # a square was cut out (to 0, plus the noise)
        assert torch.count_nonzero(seen == 0) == 0


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
