"""Lazy regularization (StyleGAN2 section 3.1, appendix B): properties derived independently of the code.

- the penalty step's gradient on a non-linear critic equals K times the closed form at the points
  the penalty names (R1 at the reals, WGAN-GP at the interpolates);
- ``penalty=False`` leaves exactly the penalty's gradient out of the D step;
- D's Adam gets lr * c and beta ** c, c = K / (K + 1), and the penalty runs on steps 0, K, 2K, ...;
- every logged term is the mean over the steps it ran on, whatever K and --log-every are.
- K is the run's own penalty's option (--r1-every for R1, --gp-every for WGAN-GP and DRAGAN) with every
  adversarial loss, in the trainer and in the summary a model card records.
"""
from __future__ import annotations

import pytest
import torch

from families import FAMILIES
from progan.training.step import discriminator_step, regularization_step

from critics import SHAPE, ConstantG, SquareCritic, check_points, gp_closed_form, make_ctx, r1_closed_form

# --- lazy regularization --------------------------------------------------------------------------

# On the non-linear critic of tests/critics.py (input gradient 2 w x, different at reals, fakes and
# interpolates), so a penalty taken at the wrong points changes the gradient; a linear critic could not tell.

@pytest.mark.parametrize("every", [1, 4, 16])
def test_lazy_penalty_gradient_is_k_times_the_closed_form(every):
    torch.manual_seed(0)
    reals = [torch.randn(5, *SHAPE)]
    fakes = torch.full_like(reals[0], 2.0)  # what ConstantG makes
    for loss, kind, weight in (("logistic_r1", "r1", 0.7 / 2), ("wgan_gp", "wgan_gp", 10.0)):
        d, g = SquareCritic(SHAPE), ConstantG(SHAPE)
        regularization_step(make_ctx(g, d, loss, r1_gamma=0.7, gp_lambda=10.0), reals, every)
        check_points(kind, d.seen[-1], reals[0], fakes, 0.5)
        closed = r1_closed_form if kind == "r1" else gp_closed_form
        _, dw = closed(d.w.detach(), d.seen[-1])
        torch.testing.assert_close(d.w.grad, every * weight * dw, rtol=1e-4, atol=1e-5)



@pytest.mark.parametrize("k", [2, 4])
def test_a_lazy_penalty_over_k_micro_batches_is_the_whole_batchs(k):
    """--grad-accum K with lazy R1 (every 3): the gradient is 3 x gamma/2 x the mean over the WHOLE batch of
    ||grad_x D(real)||^2 = ||2 w x||^2, built by hand, however the batch is split (each micro-batch / K)."""
    gen = torch.Generator().manual_seed(3)
    reals = torch.randn(8, *SHAPE, generator=gen)
    d = SquareCritic(SHAPE)
    regularization_step(make_ctx(ConstantG(SHAPE), d, "logistic_r1", r1_gamma=0.7), list(reals.chunk(k)), 3)
    w = d.w.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(3 * 0.7 / 2 * (2 * w * reals).flatten(1).square().sum(1).mean(), w)
    torch.testing.assert_close(d.w.grad, expected, rtol=1e-4, atol=1e-5)

def test_penalty_false_leaves_the_penalty_out():
    torch.manual_seed(0)
    d, g = SquareCritic(SHAPE), ConstantG(SHAPE)
    reals = [torch.randn(5, *SHAPE)]
    with_penalty = discriminator_step(make_ctx(g, d, "logistic_r1", r1_gamma=3.0), reals)
    grad_with = d.w.grad.clone()
    d.w.grad = None
    without = discriminator_step(make_ctx(g, d, "logistic_r1", r1_gamma=3.0, penalty=False), reals)
    assert "d_r1" in with_penalty and "d_r1" not in without
    # the difference is gamma / 2 * d/dw R1 at the reals (not at the fakes, which are all 2.0)
    torch.testing.assert_close(grad_with - d.w.grad, 1.5 * r1_closed_form(d.w.detach(), reals[0])[1],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("options,flag", [(dict(loss="logistic_r1"), "r1_every"), (dict(loss="wgan_gp"), "gp_every"),
                                          (dict(loss="logistic", penalty="dragan"), "gp_every")],
                         ids=["r1", "wgan_gp", "dragan"])
def test_lazy_regularization_adjusts_adam_and_runs_every_k_steps(tmp_path, monkeypatch, options, flag):
    from accelerate import Accelerator

    import progan.training.iteration as iteration_module
    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    base = dict(family="progan", preset="tiny", data=str(data), kimg=0.048, batch_size=4, **options,
                progressive=False, checkpoint_kimg=10, sample_kimg=10, workers=0, d_lr=0.002,
                adam_beta1=0.5, adam_beta2=0.99)
    calls, current = [], {}
    real_step = iteration_module.regularization_step
    monkeypatch.setattr(iteration_module, "regularization_step",
                        lambda ctx, reals, every: calls.append((current["t"].step, every)) or real_step(ctx, reals, every))
    current["t"] = lazy = Trainer(TrainConfig(**base, out=str(tmp_path / "lazy"), **{flag: 4}), FAMILIES["progan"],
                   lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))
    group = lazy.opt_d.param_groups[0]
    assert group["lr"] == pytest.approx(0.002 * 0.8)
    assert group["betas"] == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    assert lazy.opt_g.param_groups[0]["lr"] == pytest.approx(0.001)  # G is not regularized here
    lazy.train()
    assert calls == [(0, 4), (4, 4), (8, 4)]           # steps 0, 4, 8 of 12, each times 4
    calls.clear()
    current["t"] = eager = Trainer(TrainConfig(**base, out=str(tmp_path / "eager")), FAMILIES["progan"],
                    lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))
    assert eager.opt_d.param_groups[0]["lr"] == pytest.approx(0.002)
    assert eager.opt_d.param_groups[0]["betas"] == pytest.approx((0.5, 0.99))
    eager.train()
    assert calls == []                                 # K = 1: the penalty stays inside the D loss


@pytest.mark.parametrize("every,log_every", [(4, 2), (16, 10), (3, 3)])
def test_every_term_is_logged_as_its_mean_over_the_steps_it_ran_on(tmp_path, monkeypatch, every, log_every):
    """A lazy penalty runs on steps 0, K, 2K... (count before the step) and log records are written
    after steps log_every, 2 log_every...: each record must hold the mean of every term over the
    steps of its interval on which that term ran, whatever gcd(K, log_every) is."""
    import json

    from accelerate import Accelerator

    import progan.training.iteration as iteration_module
    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    steps = 2 * every + 2
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         kimg=steps * 4 / 1000, batch_size=4, loss="logistic_r1", r1_every=every,
                         log_every=log_every, progressive=False, checkpoint_kimg=10, sample_kimg=10, workers=0)
    seen = {"d_r1": {}, "g_loss": {}}  # step number after the step -> value
    trainer = None
    real_reg, real_gen = iteration_module.regularization_step, iteration_module.generator_step

    def reg(ctx, reals, k):
        terms = real_reg(ctx, reals, k)
        seen["d_r1"][trainer.step + 1] = terms["d_r1"].item()
        return terms

    def gen(ctx, batch, micro, **kwargs):
        terms = real_gen(ctx, batch, micro, **kwargs)
        seen["g_loss"][trainer.step + 1] = terms["g_loss"].item()
        return terms

    monkeypatch.setattr(iteration_module, "regularization_step", reg)
    monkeypatch.setattr(iteration_module, "generator_step", gen)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    records = [r for r in records if "g_loss" in r]
    bounds = [0] + [r["step"] for r in records]
    assert bounds[-1] == steps
    assert sorted(seen["d_r1"]) == list(range(1, steps + 1, every))
    for lo, hi, record in zip(bounds, bounds[1:], records):
        for name in ("d_r1", "g_loss"):
            values = [v for s, v in seen[name].items() if lo < s <= hi]
            if values:
                assert record[name] == pytest.approx(sum(values) / len(values), rel=1e-5), (name, lo, hi)
            else:
                assert name not in record, (name, lo, hi)
    assert sum("d_r1" in r for r in records) == len({(s - 1) // log_every for s in seen["d_r1"]})


def test_a_resume_with_other_optimizer_options_uses_them_and_keeps_adams_moments(tmp_path, capsys):
    """Optimizer.load_state_dict would restore the checkpoint's lr and betas: a resume with --gp-every 4
    and another --d-lr must run D's Adam at 4/5 of the new lr and betas ** (4/5), with its moments."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    base = dict(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                loss="wgan_gp", progressive=False, checkpoint_kimg=10, sample_kimg=10, workers=0,
                adam_beta1=0.5, adam_beta2=0.99)

    def trainer(**options):
        return Trainer(TrainConfig(**{**base, **options}), FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                       accelerator=Accelerator(cpu=True))

    first = trainer(kimg=0.016, d_lr=0.002)
    first.train()
    moments = {k: v["exp_avg_sq"].clone() for k, v in first.opt_d.state_dict()["state"].items()}
    capsys.readouterr()

    same = trainer(kimg=0.032, d_lr=0.002)
    assert same.try_resume() is not None
    assert same.opt_d.param_groups[0]["lr"] == pytest.approx(0.002)
    assert "note:" not in capsys.readouterr().out

    lazy = trainer(kimg=0.032, d_lr=0.004, gp_every=4)
    assert lazy.try_resume() is not None
    group = lazy.opt_d.param_groups[0]
    assert group["lr"] == pytest.approx(0.004 * 4 / 5)
    assert tuple(group["betas"]) == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    assert lazy.opt_g.param_groups[0]["lr"] == pytest.approx(0.001)  # G's options did not change
    state = lazy.opt_d.state_dict()["state"]
    assert state.keys() == moments.keys() and all(state[k]["step"] == 4 for k in state)
    for k, v in moments.items():
        torch.testing.assert_close(state[k]["exp_avg_sq"], v, rtol=0, atol=0)
    out = capsys.readouterr().out
    assert "note: D's Adam lr is 0.0032 from this run's options (the checkpoint had 0.002)" in out
    assert "note: D's Adam betas" in out and "note: G's" not in out


# --- each penalty's own laziness option, with every adversarial loss -------------------------------

# (options, the penalty the run takes): every adversarial loss with every penalty, the two recipes;
# K set apart per penalty (--gp-every 8 for WGAN-GP and DRAGAN, --r1-every 4 for R1), so one taken for the other shows
_EVERY = {"wgan_gp": ("gp_every", 8), "dragan": ("gp_every", 8), "r1": ("r1_every", 4)}
_RUNS = [(dict(loss=a, penalty=p), p) for a in ("wgan", "logistic", "hinge", "lsgan")
         for p in ("none", "wgan_gp", "r1", "dragan")] + [(dict(loss="wgan_gp"), "wgan_gp"),
                                                          (dict(loss="logistic_r1"), "r1")]


def _lazy_config(options: dict, penalty: str):
    from progan.training.options import TrainConfig

    flag, every = _EVERY.get(penalty, (None, 1))
    return TrainConfig(**options, spectral_norm=True, **({flag: every} if flag else {})), every


@pytest.mark.parametrize("options,penalty", _RUNS, ids=["+".join(o.values()) for o, _ in _RUNS])
def test_the_summary_records_the_laziness_of_the_penalty_the_run_takes(options, penalty):
    """A model card's ``penalty_every`` is the K of the run's own penalty: --r1-every for R1, --gp-every for
    WGAN-GP and DRAGAN, none without a penalty."""
    config, every = _lazy_config(options, penalty)
    facts = config.stabilization()
    assert facts["penalty"] == penalty
    if penalty == "none":
        assert "penalty_every" not in facts
    else:
        assert facts["penalty_every"] == every


@pytest.mark.parametrize("options,penalty", _RUNS, ids=["+".join(o.values()) for o, _ in _RUNS])
def test_each_penalty_is_lazy_by_its_own_option(options, penalty):
    """The K the trainer applies (``regularization_interval``; D's Adam correction follows it): --r1-every
    for R1, --gp-every for WGAN-GP and DRAGAN, 1 without a penalty."""
    from progan.training.step import regularization_interval

    config, every = _lazy_config(options, penalty)
    assert regularization_interval(config, config.objective) == every
