"""The one training iteration (``training.iteration.train_iteration``): what it reports and updates.

Expectations are derived apart from the code under test: D's and G's gradients in closed form on the
square critic of ``critics.py`` (``D(x) = sum(w * x^2)``) against a constant generator, Adam applied by
a copy of the optimizer to those gradients, the EMA as ``beta * ema + (1 - beta) * G`` (ProGAN
appendix A.1). Covered: a GradScaler-skipped D step is reported whichever of the iteration's D steps
it was (the lazy penalty's, StyleGAN2 section 3.1, included); G's step trains against D advanced
``unrolled_steps`` steps (Metz et al. 2017, first order) while the real D takes only its own step;
the EMA follows G *after* its optimizer step; ``w_avg`` is averaged over processes after the G step
(two threads joined by a real summing all-reduce stand in for two ranks); each player's gradients are
averaged before its step (SGD: half the move when the other rank's gradients are zero) and cleared after it.
"""
from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from critics import SHAPE, ConstantG, SquareCritic, data, make_ctx
from families import FAMILIES
from progan.training.iteration import IterationSetup, train_iteration
from progan.training.options import TrainConfig
from progan.training.step import StepContext
from rank_threads import ThreadSum, run_ranks


class SkippingAdam(torch.optim.Adam):
    """Adam whose ``step_was_skipped`` (Accelerate's flag after an fp16 GradScaler step) is True exactly
    on the calls numbered in ``skip_calls`` (from 1); a skipped call leaves the parameters alone, as the
    GradScaler does on an overflow."""

    def __init__(self, params, skip_calls=(), **options) -> None:
        super().__init__(params, **options)
        self.skip_calls, self.calls, self.step_was_skipped = set(skip_calls), 0, False

    def step(self, closure=None):
        self.calls += 1
        self.step_was_skipped = self.calls in self.skip_calls
        return None if self.step_was_skipped else super().step(closure)


def _warm(optimizer: torch.optim.Optimizer, value: float) -> None:
    """One step on a constant gradient, so Adam's moments exist and the next update depends on the
    gradient's size (Adam's first step is lr * sign(g) whatever the size)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.full_like(p, value)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# --- the skip flag of the D steps (fp16: Accelerate's step_was_skipped) ----------------------------

@pytest.mark.parametrize("skip_calls,step,calls,expected", [
    ({2}, 0, 2, True),     # only the lazy penalty's step overflowed: still a skipped D step
    ({1}, 0, 2, True),     # only the main step: the lazy step after it must not clear the flag
    ((), 0, 2, False),     # neither
    ({1}, 1, 1, True),     # no lazy penalty this iteration: the main step alone counts
    ((), 1, 1, False),
], ids=["lazy-only", "main-only", "neither", "no-lazy-main", "no-lazy-neither"])
def test_a_skipped_d_step_is_reported_whichever_d_step_it_was(skip_calls, step, calls, expected):
    torch.manual_seed(0)
    g, d = ConstantG(SHAPE), SquareCritic(SHAPE)
    reals, _ = data()
    opt_d = SkippingAdam(d.parameters(), skip_calls, lr=0.01, betas=(0.0, 0.99))
    setup = IterationSetup(opt_g=torch.optim.Adam(g.parameters(), lr=0.01), opt_d=opt_d,
                           generator_ema=copy.deepcopy(g), reg_every=2)
    ctx = make_ctx(g, d, "logistic_r1", penalty=False)  # lazy: the penalty is its own D step
    terms = train_iteration(ctx, setup, [reals], step=step, ema_beta=0.5)
    assert opt_d.calls == calls  # the lazy penalty runs when step % reg_every == 0
    assert ("d_r1" in terms.d_terms) == (calls == 2)
    assert terms.d_skipped is expected


# --- the unrolled discriminator (Metz et al. 2017, first order) ------------------------------------

@pytest.mark.parametrize("k", [1, 3])
def test_g_steps_against_d_advanced_k_steps_and_the_real_d_takes_one(k):
    """``wgan+none`` without drift on ``D(x) = sum(w * x^2)``, fakes ``c = 2 + dummy`` everywhere:
    D's loss ``mean D(fake) - mean D(real)`` has the w-gradient ``c^2 - mean_i real_i^2``; G's loss
    ``-mean D(fake)`` has the dummy-gradient ``-2 c sum(w)``, with w the unrolled copy's."""
    torch.manual_seed(0)
    g, d = ConstantG(SHAPE), SquareCritic(SHAPE)
    reals, _ = data()
    opt_g = torch.optim.Adam(g.parameters(), lr=0.05, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.0, 0.99))
    _warm(opt_g, -0.7)
    _warm(opt_d, 0.3)
    g_grads: list[torch.Tensor] = []  # G's gradient as its step sees it (cleared before the call returns)
    g.dummy.register_post_accumulate_grad_hook(lambda p: g_grads.append(p.grad.clone()))

    # the expectation: copies of D and its Adam advanced 1 (its own step) + k (the unrolling) steps
    d_ref, opt_d_ref = copy.deepcopy((d, opt_d))  # one deepcopy: the optimizer keeps the copy's parameters
    g_ref, opt_g_ref = copy.deepcopy((g, opt_g))
    c = 2.0 + g.dummy.detach()
    d_grad = c.square() - reals.square().mean(0)  # [C, H, W]: G is not trained during the unrolling
    for i in range(1 + k):
        d_ref.w.grad = d_grad.clone()
        opt_d_ref.step()
        if i == 0:
            d_after_own_step = (d_ref.w.detach().clone(), copy.deepcopy(opt_d_ref.state_dict()))
    g_grad = -2 * c * d_ref.w.detach().sum()
    g_ref.dummy.grad = g_grad.clone()
    opt_g_ref.step()

    setup = IterationSetup(opt_g=opt_g, opt_d=opt_d, generator_ema=copy.deepcopy(g), unrolled_steps=k)
    train_iteration(make_ctx(g, d, "wgan+none", drift_epsilon=0.0), setup, [reals], step=0, ema_beta=0.5)

    assert len(g_grads) == 1
    torch.testing.assert_close(g_grads[0], g_grad)
    torch.testing.assert_close(g.dummy.detach(), g_ref.dummy.detach())
    # against the real D (advanced one step) G's gradient would be another one
    against_real_d = -2 * c * d_after_own_step[0].sum()
    assert not torch.allclose(g_grads[0], against_real_d, rtol=1e-3, atol=0)
    # the real D and its Adam took their own one step only; the unrolled steps went to a copy
    torch.testing.assert_close(d.w.detach(), d_after_own_step[0])
    state = opt_d.state_dict()["state"][0]
    for key, value in d_after_own_step[1]["state"][0].items():
        torch.testing.assert_close(state[key], value)
    assert d.w.grad is None


# --- the EMA follows G after its step ---------------------------------------------------------------

@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_ema_is_the_closed_form_of_g_after_its_step(family_name):
    family = FAMILIES[family_name]
    model = family.presets["tiny"]
    torch.manual_seed(0)
    g, d = family.generator_cls(model).train(), family.discriminator_cls(model).train()
    ema = copy.deepcopy(g).eval().requires_grad_(False)
    with torch.no_grad():  # an EMA apart from G, as after some training
        for p in ema.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ema_before = [p.detach().clone() for p in ema.parameters()]
    g_before = [p.detach().clone() for p in g.parameters()]
    opt_g = torch.optim.Adam(g.parameters(), lr=0.01, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.0, 0.99))
    ctx = StepContext(generator=g, discriminator=d, loss=family.default_loss, stage=model.num_stages - 1, alpha=1.0,
                      latent_dim=model.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                      backward=lambda loss: loss.backward())
    setup = IterationSetup(opt_g=opt_g, opt_d=opt_d, generator_ema=ema)
    beta = 0.75
    reals = [torch.rand(4, 3, model.resolution, model.resolution) * 2 - 1]
    train_iteration(ctx, setup, reals, step=0, ema_beta=beta)

    g_after = [p.detach() for p in g.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(g_after, g_before))  # G's step moved G
    for e, e0, p in zip(ema.parameters(), ema_before, g_after):
        torch.testing.assert_close(e, beta * e0 + (1 - beta) * p)
    from_g_before = [beta * e0 + (1 - beta) * p0 for e0, p0 in zip(ema_before, g_before)]
    assert any(not torch.allclose(e, x) for e, x in zip(ema.parameters(), from_g_before))
    for b_ema, b_g in zip(ema.buffers(), g.buffers()):  # buffers (w_avg) copied, not averaged
        assert torch.equal(b_ema, b_g)


def test_history_and_the_minibatch_are_kept_only_for_the_tricks_that_read_them():
    """Historical averaging (Salimans et al. 2016, section 3.3) keeps running sums, and logs its penalty,
    only at a weight above 0; with feature matching and the unrolled D off (weight 0, 0 steps) G's step
    reads no reals, so the iteration empties the caller's minibatch list before G's graph is built."""
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        g, d = ConstantG(SHAPE), SquareCritic(SHAPE)
        setup = IterationSetup.from_config(
            TrainConfig(historical_averaging=weight), generator=g, discriminator=d, generator_ema=copy.deepcopy(g),
            opt_g=torch.optim.Adam(g.parameters()), opt_d=torch.optim.Adam(d.parameters()), reg_every=1)
        assert (setup.history is None) == (weight == 0.0)
        reals = [data()[0]]
        terms = train_iteration(make_ctx(g, d, "wgan_gp", feature_matching=0.0), setup, reals, step=0, ema_beta=0.5)
        assert ("d_historical" in terms.d_terms, "g_historical" in terms.g_terms) == (weight > 0,) * 2
        assert reals == []


# --- w_avg across processes -------------------------------------------------------------------------

def test_w_avg_is_averaged_over_processes_after_the_g_step():
    """Two ranks from identical weights, each drawing its own latents (threads joined by a summing all-reduce,
    the ``reduce_options`` a real run takes from the process group): after one iteration from w_avg = 0 both
    hold ``mean over ranks of (1 - beta) * mean(mapping(z_rank))``, StyleGAN's dlatent_avg over the global
    minibatch, in G and in its EMA copy; each rank's own value would make the ranks' weights differ."""
    family, world = FAMILIES["stylegan_lite"], 2
    model = family.presets["tiny"]
    torch.manual_seed(0)
    g0, d0 = family.generator_cls(model).train(), SquareCritic(SHAPE)  # stage 0: 4 px, SHAPE's size
    collective, ws = ThreadSum(world), [[] for _ in range(world)]

    def rank(r: int):
        g, d = copy.deepcopy(g0), copy.deepcopy(d0)
        g.mapping.register_forward_hook(  # the G step's w (the D step maps under no_grad)
            lambda module, args, w: ws[r].append(w.detach().clone()) if torch.is_grad_enabled() else None)
        setup = IterationSetup.from_config(
            TrainConfig(), generator=g, discriminator=d, generator_ema=copy.deepcopy(g),
            opt_g=torch.optim.Adam(g.parameters()), opt_d=torch.optim.Adam(d.parameters()), reg_every=1,
            reduce_options={"world": world, "all_reduce": collective.for_rank(r)})
        ctx = make_ctx(g, d, "logistic+none", latent_dim=model.latent_dim)
        train_iteration(ctx, setup, [data()[0]], step=0, ema_beta=0.5)
        return g.w_avg.clone(), setup.generator_ema.w_avg.clone()

    results = run_ranks(world, rank, collective.barrier)
    assert [len(w) for w in ws] == [1, 1]
    local = [(1 - model.w_avg_beta) * w[0].mean(0) for w in ws]  # what each rank tracked on its own latents
    assert not torch.allclose(local[0], local[1])
    expected = (local[0] + local[1]) / 2
    for w_avg, ema_w_avg in results:
        torch.testing.assert_close(w_avg, expected)
        torch.testing.assert_close(ema_w_avg, expected)


# --- gradients: averaged over processes before each step, none left behind after it ---------------

def _tiny_setup(reduce_options=None, lr_g=0.1, lr_d=0.1):
    family = FAMILIES["progan"]
    torch.manual_seed(0)
    g, d = family.generator_cls(family.presets["tiny"]).train(), SquareCritic(SHAPE)
    setup = IterationSetup.from_config(
        TrainConfig(), generator=g, discriminator=d, generator_ema=copy.deepcopy(g),
        opt_g=torch.optim.SGD(g.parameters(), lr=lr_g), opt_d=torch.optim.SGD(d.parameters(), lr=lr_d), reg_every=1,
        reduce_options=reduce_options or {})
    return g, d, setup, make_ctx(g, d, "wgan+none", latent_dim=family.presets["tiny"].latent_dim)


def test_each_players_gradients_are_averaged_over_processes_before_its_step():
    """A stand-in all-reduce for a world of two in which the other rank's gradients are all zero (the sum
    is this rank's own): the mean is half of this rank's gradient, so with SGD each player moves exactly
    half as far as a one-process run from the same weights and draws. D's all-reduce dropped leaves D's
    step at full size (its ranks would drift apart). G is checked with D's learning rate at 0, so both runs'
    G steps see the same D."""
    for player, rates in ((0, {"lr_d": 0.0}), (1, {})):
        _check_half_step(player, rates)


def _check_half_step(player, rates):
    moved = {}
    for world in (1, 2):
        g, d, setup, ctx = _tiny_setup({"world": world, "all_reduce": lambda flat: None} if world == 2 else {}, **rates)
        g_before, d_before = [p.detach().clone() for p in g.parameters()], [p.detach().clone() for p in d.parameters()]
        torch.manual_seed(1)
        train_iteration(ctx, setup, [data()[0]], step=0, ema_beta=0.5)
        moved[world] = ([p.detach() - b for p, b in zip(g.parameters(), g_before)],
                        [p.detach() - b for p, b in zip(d.parameters(), d_before)])
    assert any(m.abs().sum() > 0 for m in moved[1][player])
    for full, half in zip(moved[1][player], moved[2][player]):
        torch.testing.assert_close(half, full / 2, rtol=1e-4, atol=1e-6)  # float32 parameter differences


def test_the_iteration_leaves_no_gradient_behind_for_the_next_one():
    """Every D and G parameter's gradient is cleared after its step: a gradient left in G (or D) adds into the
    next iteration's, so the second step would move by both steps' gradients."""
    g, d, setup, ctx = _tiny_setup()
    for step in range(2):
        train_iteration(ctx, setup, [data()[0]], step=step, ema_beta=0.5)
        assert [n for n, p in g.named_parameters() if p.grad is not None] == []
        assert [n for n, p in d.named_parameters() if p.grad is not None] == []
