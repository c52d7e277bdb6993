"""Penalties are taken at the points their papers name, in every path the trainer uses.

WGAN-GP (Gulrajani et al. 2017, section 4: on random points of the real-fake lines), R1 (Mescheder et
al. 2018, section 4.1: at the reals), DRAGAN (Kodali et al. 2017, section 4: near the reals), each
1. inside the training step's D loss (``discriminator_step``, penalty=True), and
2. alone, as lazy regularization applies it (``losses.discriminator_penalty``, StyleGAN2 section 3.1),
given reals and fakes that differ, to the non-linear critic of ``tests/critics.py``: ``D(x) = sum(w x^2)``,
whose input gradient ``2 w x`` differs at reals, fakes and interpolates. The expected gradients are the
closed forms there; a penalty taken on the fakes, or on the reals instead of the interpolates, changes
them (the linear critic of the older tests could not tell).
A run's summary (model card, export) records each penalty's own weight and laziness, and no other's.
"""
from __future__ import annotations

import pytest
import torch

from progan import losses
from progan.training.step import discriminator_step

from critics import PART, SHAPE, ConstantG, SquareCritic, check_points, data, gp_closed_form, make_ctx, r1_closed_form

WEIGHTS = dict(gp_lambda=3.0, r1_gamma=5.0, dragan_c=0.5)


def _closed_form(kind: str, w: torch.Tensor, points: torch.Tensor) -> tuple[float, torch.Tensor]:
    return r1_closed_form(w, points) if kind == "r1" else gp_closed_form(w, points)


def _weight(kind: str) -> float:
    return WEIGHTS["r1_gamma"] / 2 if kind == "r1" else WEIGHTS["gp_lambda"]


@pytest.mark.parametrize("name", ["wgan_gp", "hinge+wgan_gp", "logistic_r1", "wgan+r1", "logistic+dragan",
                                  "lsgan+dragan"])
def test_the_training_steps_penalty_is_taken_where_the_paper_says(name):
    """The D step with the penalty minus the D step without it: weight * d/dw penalty at the right points."""
    kind = losses.split_loss(name)[1]
    reals, _ = data()
    fakes = torch.full_like(reals, 2.0)  # what ConstantG makes
    grads = {}
    for penalty in (False, True):
        torch.manual_seed(0)
        d, g = SquareCritic(SHAPE), ConstantG(SHAPE)
        terms = discriminator_step(make_ctx(g, d, name, penalty=penalty, **WEIGHTS), [reals])
        grads[penalty] = d.w.grad.clone()
    assert PART[kind] in terms
    points = d.seen[-1]  # the penalty's call to D comes last
    check_points(kind, points, reals, fakes, WEIGHTS["dragan_c"])
    value, dw = _closed_form(kind, d.w.detach(), points)
    assert terms[PART[kind]].item() == pytest.approx(value, rel=1e-5)
    torch.testing.assert_close(grads[True] - grads[False], _weight(kind) * dw, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["wgan_gp", "logistic_r1", "hinge+r1", "logistic+dragan"])
def test_the_lazy_penalty_alone_is_taken_where_the_paper_says(name):
    """``discriminator_penalty`` given distinct reals and fakes: R1 and DRAGAN never look at the fakes."""
    torch.manual_seed(0)
    kind = losses.split_loss(name)[1]
    d, (reals, fakes) = SquareCritic(SHAPE), data()
    loss, parts = losses.discriminator_penalty(name, d, reals, fakes, **WEIGHTS)
    assert len(d.seen) == 1
    check_points(kind, d.seen[0], reals, fakes, WEIGHTS["dragan_c"])
    value, dw = _closed_form(kind, d.w.detach(), d.seen[0])
    assert parts[PART[kind]].item() == pytest.approx(value, rel=1e-5)
    assert loss.item() == pytest.approx(_weight(kind) * value, rel=1e-5)
    loss.backward()
    torch.testing.assert_close(d.w.grad, _weight(kind) * dw, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("lazy", [True, False])
def test_dragan_perturbs_with_the_c_it_is_given(lazy):
    """--dragan-c reaches the penalty in both paths (lazy ``discriminator_penalty`` and the in-loss one):
    under one RNG draw the points are the hand-built ``x + u * c * std(x) * U`` (U ~ U[0, 1) per pixel,
    u ~ U[0, 1) per image) for c = 0.1 and c = 2, not for the default 0.5, and the penalty is the closed
    form at those points, so it differs between the two c's."""
    reals, fakes = data()
    values = {}
    for c in (0.1, 2.0):
        torch.manual_seed(3)
        box = torch.rand_like(reals)
        u = torch.rand(reals.shape[0], 1, 1, 1)
        expected = reals + u * c * reals.std() * box
        torch.manual_seed(3)
        d = SquareCritic(SHAPE)
        weights = {**WEIGHTS, "dragan_c": c}
        if lazy:
            loss, parts = losses.discriminator_penalty("logistic+dragan", d, reals, fakes, **weights)
        else:
            _, parts = losses.discriminator_real_loss("logistic+dragan", d, reals, fakes, penalty=True, **weights)
        points = d.seen[-1]
        torch.testing.assert_close(points, expected, rtol=1e-5, atol=1e-6)
        value, _ = gp_closed_form(d.w.detach(), expected)
        assert parts["d_dragan"].item() == pytest.approx(value, rel=1e-5)
        values[c] = value
    assert abs(values[0.1] - values[2.0]) > 0.01 * max(values.values())


class _QueueG(torch.nn.Module):
    """Hands out the rows of ``fakes`` in order, whatever z: K micro-batches see the fakes one batch would."""

    def __init__(self, fakes: torch.Tensor) -> None:
        super().__init__()
        self.fakes, self.next, self.dummy = fakes, 0, torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, **_):
        out = self.fakes[self.next:self.next + z.shape[0]]
        self.next += z.shape[0]
        return out + self.dummy


@pytest.mark.parametrize("name,penalty", [("logistic_r1", False), ("logistic_r1", True), ("lsgan+r1", True)])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_grad_accum_gives_the_gradient_of_one_step_on_the_whole_batch(name, penalty, k):
    """--grad-accum K: D's gradient over a batch split in K micro-batches is the gradient of the batch's
    loss built by hand, ``mean_i f(D(fake_i)) + mean_i r(D(real_i)) (+ gamma/2 mean_i ||grad_x D(real_i)||^2)``,
    for the non-linear critic ``D(x) = sum(w x^2)``: each half (fake, real, penalty) averaged over K."""
    gen = torch.Generator().manual_seed(5)
    reals = torch.randn(8, *SHAPE, generator=gen)
    fakes = 0.5 + torch.randn(8, *SHAPE, generator=gen)
    d = SquareCritic(SHAPE)
    discriminator_step(make_ctx(_QueueG(fakes), d, name, penalty=penalty, **WEIGHTS), list(reals.chunk(k)))
    w = d.w.detach().clone().requires_grad_(True)
    fake_scores, real_scores = (w * fakes.square()).flatten(1).sum(1), (w * reals.square()).flatten(1).sum(1)
    if name.startswith("logistic"):  # softplus(D(fake)) + softplus(-D(real))
        loss = torch.nn.functional.softplus(fake_scores).mean() + torch.nn.functional.softplus(-real_scores).mean()
    else:  # least squares, a = -1, b = 1: 1/2 (D(fake) + 1)^2 + 1/2 (D(real) - 1)^2
        loss = 0.5 * (fake_scores + 1).square().mean() + 0.5 * (real_scores - 1).square().mean()
    if penalty:  # R1 with grad_x D = 2 w x
        loss = loss + WEIGHTS["r1_gamma"] / 2 * (2 * w * reals).flatten(1).square().sum(1).mean()
    (expected,) = torch.autograd.grad(loss, w)
    torch.testing.assert_close(d.w.grad, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", [0.5, 3.0])
@pytest.mark.parametrize("kind", ["wgan_gp", "dragan"])
def test_gradient_norm_penalties_pull_towards_the_target_they_are_given(kind, target):
    """``target=`` (a one-centred penalty's 1, e.g. 0.5 or 3): mean (||2 w x_hat|| - target)^2 at the points
    D was differentiated at, with its w-gradient, never the default target's."""
    torch.manual_seed(0)
    d, (reals, fakes) = SquareCritic(SHAPE), data()
    if kind == "wgan_gp":
        value = losses.gradient_penalty(d, reals, fakes, target=target)
    else:
        value = losses.dragan_penalty(d, reals, c=0.5, target=target)
    (points,) = d.seen
    check_points(kind, points, reals, fakes, 0.5)
    grads = 2 * d.w.detach() * points
    norms = grads.flatten(1).norm(dim=1)
    assert value.item() == pytest.approx((norms - target).square().mean().item(), rel=1e-5)
    assert value.item() != pytest.approx((norms - 1).square().mean().item(), rel=1e-3)
    (dw,) = torch.autograd.grad(value, d.w)
    expected = ((2 * (norms - target) / norms).view(-1, 1, 1, 1) * grads * 2 * points).mean(0)
    torch.testing.assert_close(dw, expected, rtol=1e-4, atol=1e-6)


# each penalty's own weight and laziness, set apart from the defaults (gp 10, r1 10, every 1, c 0.5, drift 1e-3)
_SET = dict(gp_lambda=3.0, r1_gamma=5.0, dragan_c=0.25, drift_epsilon=0.002, spectral_norm=True)
_RECORDED = [  # (options, the penalty facts the run records), by hand from each paper's parameters
    (dict(loss="wgan", penalty="wgan_gp", gp_every=4),
     dict(loss="wgan", penalty="wgan_gp", drift_epsilon=0.002, gp_lambda=3.0, penalty_every=4)),
    (dict(loss="logistic", penalty="dragan", gp_every=8),
     dict(loss="logistic", penalty="dragan", gp_lambda=3.0, penalty_every=8, dragan_c=0.25)),
    (dict(loss="hinge", penalty="r1", r1_every=16), dict(loss="hinge", penalty="r1", r1_gamma=5.0, penalty_every=16)),
    (dict(loss="hinge"), dict(loss="hinge", penalty="none")),
    (dict(loss="wgan"), dict(loss="wgan", penalty="none", drift_epsilon=0.002)),
]


@pytest.mark.parametrize("options,recorded", _RECORDED, ids=[f"{o['loss']}+{r['penalty']}" for o, r in _RECORDED])
def test_the_summary_records_each_penaltys_own_weight_and_laziness_and_no_other(options, recorded):
    """What model cards and summaries record (``TrainConfig.stabilization``): WGAN-GP and DRAGAN their
    lambda and --gp-every, DRAGAN also c, R1 its gamma and --r1-every, WGAN its drift; nothing for a
    penalty the run does not take."""
    from progan.training.options import TrainConfig

    facts = TrainConfig(**_SET, **options).stabilization()
    assert facts == {**recorded, "spectral_norm": True, "label_smoothing": 0.0, "instance_noise": 0.0,
                     "g_lr": 0.001, "d_lr": 0.001, "reset_opt_at_stage": False}


# the family's recipe (empty --loss): ProGAN wgan + wgan_gp, StyleGAN-lite logistic + r1 (FAMILY_LOSS), each
# --penalty replacing the recipe's own; the pair keeps the recipe's name only when it is the recipe's pair
_FAMILY_ADVERSARIAL = {"progan": "wgan", "stylegan_lite": "logistic"}
_OWN_EVERY = {"wgan_gp": dict(gp_every=8), "dragan": dict(gp_every=8), "r1": dict(r1_every=4), "none": {}}


@pytest.mark.parametrize("family", ["progan", "stylegan_lite"])
@pytest.mark.parametrize("penalty", ["", "none", "wgan_gp", "r1", "dragan"])
def test_the_familys_recipe_trains_and_records_the_penalty_it_is_given(family, penalty):
    """``--penalty`` beside an empty ``--loss`` replaces the recipe's penalty in the loss the step uses
    (``objective``) and in the summary, with that penalty's own laziness (set apart: --gp-every 8,
    --r1-every 4); no ``--penalty`` keeps the recipe's."""
    from progan.training.options import TrainConfig
    from progan.training.step import regularization_interval

    adversarial = _FAMILY_ADVERSARIAL[family]
    taken = penalty or {"progan": "wgan_gp", "stylegan_lite": "r1"}[family]
    expected = {("wgan", "wgan_gp"): "wgan_gp", ("logistic", "r1"): "logistic_r1"}.get(
        (adversarial, taken), f"{adversarial}+{taken}")
    every = _OWN_EVERY[taken]
    config = TrainConfig(family=family, penalty=penalty, spectral_norm=True, **every)
    assert config.objective == expected
    facts = config.stabilization()
    assert (facts["loss"], facts["penalty"]) == (adversarial, taken)
    assert facts.get("penalty_every") == next(iter(every.values()), None)
    assert regularization_interval(config, config.objective) == next(iter(every.values()), 1)
