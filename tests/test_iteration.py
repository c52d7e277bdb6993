"""The one training iteration (``training.iteration.train_iteration``): what it reports and updates.

Expectations are derived apart from the code under test: D's and G's gradients in closed form on the
square critic of ``critics.py`` (``D(x) = sum(w * x^2)``) against a constant generator, Adam applied by
a copy of the optimizer to those gradients, the EMA as ``beta * ema + (1 - beta) * G`` (ProGAN
appendix A.1). Covered: a GradScaler-skipped D step is reported whichever of the iteration's D steps
it was (the lazy penalty's, StyleGAN2 section 3.1, included); G's step trains against D advanced
``unrolled_steps`` steps (Metz et al. 2017, first order) while the real D takes only its own step;
the EMA follows G *after* its optimizer step; two ranks (threads exchanging through a real all-reduce)
step D on the mean of their gradients; each G step sees its own iteration's gradient, not a running sum.
"""
from __future__ import annotations

import contextlib
import copy
import threading

import pytest
import torch

from critics import SHAPE, ConstantG, SquareCritic, data, make_ctx
from families import FAMILIES
from progan.training.iteration import IterationSetup, train_iteration
from progan.training.step import StepContext


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
    from progan.training.options import TrainConfig

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


# --- across processes and across iterations: the gradients each optimizer step sees ----------------

class ThreadGroup:
    """A real all-reduce (a sum, in place) among ``world`` threads, exchanged through a barrier: what
    ``reduce_options``' ``all_reduce`` stands for (``dist.all_reduce`` in a run of ``world`` processes)."""

    def __init__(self, world: int) -> None:
        self.world, self.barrier, self.slots = world, threading.Barrier(world, timeout=30), {}

    def options(self, rank: int) -> dict:
        def all_reduce(flat: torch.Tensor) -> None:
            self.slots[rank] = flat.clone()
            self.barrier.wait()
            total = sum(self.slots[r] for r in range(self.world))
            self.barrier.wait()  # every rank has read every slot before the next call overwrites one
            flat.copy_(total)
        return {"world": self.world, "all_reduce": all_reduce}


def _wgan_players():
    """Constant G and the square critic, Adam warmed (so a step depends on the gradient's size): the D
    w-gradient of ``wgan+none`` (no drift) is ``c^2 - mean_i real_i^2`` with ``c = 2 + dummy``, G's
    dummy-gradient ``-2 c sum(w)`` with w after D's step (``test_g_steps_against_d_advanced_k_steps...``)."""
    torch.manual_seed(0)
    g, d = ConstantG(SHAPE), SquareCritic(SHAPE)
    opt_g = torch.optim.Adam(g.parameters(), lr=0.05, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.0, 0.99))
    _warm(opt_g, -0.7)
    _warm(opt_d, 0.3)
    return g, d, opt_g, opt_d


def test_two_processes_step_d_and_g_on_the_mean_of_their_gradients():
    """Two ranks with identical weights and their own reals: each rank's D takes Adam's step on the *mean*
    of the two ranks' D gradients (``c^2 - (mean r0^2 + mean r1^2) / 2``), so the ranks stay identical;
    without the all-reduce each rank would step on its own reals' gradient and the ranks drift apart."""
    world = 2
    reals = [torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(10 + r)) * (1 + r) for r in range(world)]
    g, d, opt_g, opt_d = _wgan_players()
    (d_ref, opt_d_ref), (g_ref, opt_g_ref) = copy.deepcopy((d, opt_d)), copy.deepcopy((g, opt_g))
    c = 2.0 + g.dummy.detach()
    d_ref.w.grad = c.square() - sum(r.square().mean(0) for r in reals) / world
    opt_d_ref.step()
    g_ref.dummy.grad = -2 * c * d_ref.w.detach().sum()  # equal on both ranks: the mean is itself
    opt_g_ref.step()
    own = copy.deepcopy((d, opt_d))  # what rank 0 alone would do: its own reals' gradient
    own[0].w.grad = c.square() - reals[0].square().mean(0)
    own[1].step()
    assert not torch.allclose(own[0].w, d_ref.w, rtol=1e-4, atol=0)

    group, results, errors = ThreadGroup(world), [None] * world, []

    def rank(r: int) -> None:
        try:
            g_r, d_r, opt_g_r, opt_d_r = copy.deepcopy((g, d, opt_g, opt_d))
            setup = IterationSetup(opt_g=opt_g_r, opt_d=opt_d_r, generator_ema=copy.deepcopy(g_r),
                                   reduce_options=group.options(r))
            train_iteration(make_ctx(g_r, d_r, "wgan+none", drift_epsilon=0.0), setup, [reals[r]], step=0,
                            ema_beta=0.5)
            results[r] = (d_r.w.detach(), g_r.dummy.detach())
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)
            group.barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    for w, dummy in results:
        torch.testing.assert_close(w, d_ref.w.detach())
        torch.testing.assert_close(dummy, g_ref.dummy.detach())


def test_each_iterations_g_step_sees_its_own_gradient_not_the_sum_of_the_earlier_ones():
    """Three iterations on one process: G's Adam steps on that iteration's gradient alone (the optimizers
    clear theirs after stepping, as PyTorch accumulates into ``.grad``), so G follows the closed form
    iteration by iteration; accumulated gradients would give G the running sum."""
    reals, _ = data()
    g, d, opt_g, opt_d = _wgan_players()
    (d_ref, opt_d_ref), (g_ref, opt_g_ref) = copy.deepcopy((d, opt_d)), copy.deepcopy((g, opt_g))
    expected = []
    for _ in range(3):
        c = 2.0 + g_ref.dummy.detach()
        d_ref.w.grad = c.square() - reals.square().mean(0)
        opt_d_ref.step()
        expected.append(-2 * c * d_ref.w.detach().sum())
        g_ref.dummy.grad = expected[-1].clone()
        opt_g_ref.step()

    seen: list[torch.Tensor] = []  # G's gradient as each step sees it
    g.dummy.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.clone()))
    setup = IterationSetup(opt_g=opt_g, opt_d=opt_d, generator_ema=copy.deepcopy(g))
    for step in range(3):
        train_iteration(make_ctx(g, d, "wgan+none", drift_epsilon=0.0), setup, [reals], step=step, ema_beta=0.5)
        assert g.dummy.grad is None and d.w.grad is None  # nothing left over for the next iteration
    torch.testing.assert_close(torch.stack(seen), torch.stack(expected))
    torch.testing.assert_close(g.dummy.detach(), g_ref.dummy.detach())
    torch.testing.assert_close(d.w.detach(), d_ref.w.detach())
