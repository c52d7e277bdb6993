"""The gradients each optimizer step of the training iteration (``training.iteration.train_iteration``) sees:
two ranks (threads exchanging through a real all-reduce) step D on the mean of their gradients, worked out
by hand on the square critic of ``critics.py``; each G step sees its own iteration's gradient, not a running
sum (the statement sweep dropped D's all-reduce and G's ``zero_grad`` unnoticed; docs/testing.md).
"""
from __future__ import annotations

import copy

import torch

from critics import SHAPE, ConstantG, SquareCritic, data, make_ctx
from progan.training.iteration import IterationSetup, train_iteration
from rank_threads import ThreadSum, run_ranks
from test_iteration import _warm


# --- across processes and across iterations: the gradients each optimizer step sees ----------------

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

    group = ThreadSum(world)

    def rank(r: int):
        g_r, d_r, opt_g_r, opt_d_r = copy.deepcopy((g, d, opt_g, opt_d))
        setup = IterationSetup(opt_g=opt_g_r, opt_d=opt_d_r, generator_ema=copy.deepcopy(g_r),
                               reduce_options={"world": world, "all_reduce": group.for_rank(r)})
        train_iteration(make_ctx(g_r, d_r, "wgan+none", drift_epsilon=0.0), setup, [reals[r]], step=0,
                        ema_beta=0.5)
        return d_r.w.detach(), g_r.dummy.detach()

    results = run_ranks(world, rank, group.barrier, timeout=60)
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
