"""Losses, EMA and the training step against closed forms computed independently of the code.

- progan/losses.py: WGAN-GP (Gulrajani et al. 2017) and R1 (Mescheder et al. 2018) of a *linear*
  critic ``D(x) = <w, x>``, whose input gradient is ``w`` everywhere: GP = (||w|| - 1)^2, R1 = ||w||^2,
  and their gradients with respect to ``w`` (the double backward the penalties rely on).
- progan/training/ema.py: after k updates towards a fixed model, ``ema = m + beta^k (e0 - m)``; the
  half-life form of beta and its ramp-up (stylegan2-ada).
- progan/training/step.py: ``fade_reals`` is ``lerp(up(avgpool(x)), x, alpha)`` and is what D sees in
  the D step; ``w_avg`` moves by ``(1 - beta) * mean(mapping(z))`` in the G step only (StyleGAN's
  dlatent_avg), never in the D step.
"""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from critics import ConstantG, make_ctx
from families import FAMILIES
from progan import losses
from progan.training.ema import ema_beta, update_ema
from progan.training.options import TrainConfig
from progan.training.step import StepContext, discriminator_step, fade_reals, generator_step

SHAPE = (3, 2, 2, 2)  # [N, C, H, W]: N=3 so a sum in place of a mean shows


class LinearCritic(nn.Module):
    """``D(x) = <w, flatten(x)>`` -> scores [N, 1]; records every batch it is shown."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, **_stage) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


def _critic(norm: float, seed: int = 0) -> LinearCritic:
    w = torch.randn(math.prod(SHAPE[1:]), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return LinearCritic((w / w.norm() * norm).float())


def _batch(seed: int) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("norm", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("grad_scale", [1.0, 1024.0])
def test_gradient_penalty_of_a_linear_critic(norm, grad_scale):
    critic = _critic(norm)
    gp = losses.gradient_penalty(critic, _batch(1), _batch(2), grad_scale=grad_scale)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-5, abs=1e-6)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    w = critic.w.detach()
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1.0) * w / w.norm(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("norm", [0.5, 2.0])
def test_r1_of_a_linear_critic(norm):
    critic = _critic(norm)
    real = _batch(3)
    r1, scores = losses.r1_penalty(critic, real, grad_scale=512.0)
    assert r1.item() == pytest.approx(norm ** 2, rel=1e-5)
    torch.testing.assert_close(scores, (real.flatten(1) @ critic.w.detach()).unsqueeze(1))
    r1.backward()  # d/dw ||w||^2 = 2 w
    torch.testing.assert_close(critic.w.grad, 2 * critic.w.detach(), rtol=1e-4, atol=1e-6)


def test_wgan_gp_discriminator_loss_closed_form():
    critic, real, fake = _critic(2.0), _batch(4), _batch(5)
    w = critic.w.detach()
    d_real, d_fake = real.flatten(1) @ w, fake.flatten(1) @ w
    loss, parts = losses.discriminator_loss("wgan_gp", critic, real, fake, gp_lambda=7.0, drift_epsilon=0.01)
    expected = d_fake.mean() - d_real.mean() + 0.01 * d_real.square().mean() + 7.0 * (2.0 - 1.0) ** 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["d_gp"].item() == pytest.approx(1.0, rel=1e-5)
    assert parts["d_drift"].item() == pytest.approx(d_real.square().mean().item(), rel=1e-5)
    assert parts["real_sign"].item() == pytest.approx(d_real.sign().mean().item())
    assert losses.wgan_generator_loss(d_fake.unsqueeze(1)).item() == pytest.approx(-d_fake.mean().item(), rel=1e-6)


def test_logistic_r1_discriminator_loss_closed_form():
    critic, real, fake = _critic(0.5), _batch(6), _batch(7)
    w = critic.w.detach()
    d_real, d_fake = real.flatten(1) @ w, fake.flatten(1) @ w
    loss, parts = losses.discriminator_loss("logistic_r1", critic, real, fake, r1_gamma=4.0)
    # -log(1 - sigmoid(D(fake))) - log sigmoid(D(real)) + gamma/2 ||w||^2
    expected = (-torch.log1p(-torch.sigmoid(d_fake))).mean() - torch.log(torch.sigmoid(d_real)).mean() + 2.0 * 0.25
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["d_r1"].item() == pytest.approx(0.25, rel=1e-5)
    g = losses.logistic_generator_loss(d_fake.unsqueeze(1))
    assert g.item() == pytest.approx(-torch.log(torch.sigmoid(d_fake)).mean().item(), rel=1e-5)


def test_lazy_penalties_are_the_weighted_penalties_alone():
    critic, real, fake = _critic(3.0), _batch(8), _batch(9)
    gp, _ = losses.discriminator_penalty("wgan_gp", critic, real, fake, gp_lambda=10.0)
    assert gp.item() == pytest.approx(10.0 * 4.0, rel=1e-5)
    r1, _ = losses.discriminator_penalty("logistic_r1", critic, real, fake, r1_gamma=6.0)
    assert r1.item() == pytest.approx(3.0 * 9.0, rel=1e-5)
    # penalty=False leaves exactly that term out
    with_p, _ = losses.discriminator_loss("wgan_gp", critic, real, fake, gp_lambda=10.0)
    without, _ = losses.discriminator_loss("wgan_gp", critic, real, fake, gp_lambda=10.0, penalty=False)
    assert (with_p - without).item() == pytest.approx(40.0, rel=1e-5)



def test_the_logged_d_loss_is_the_sum_of_the_fake_and_real_halves():
    # the D step's logged d_loss is the whole WGAN-GP loss: E[D(fake)] - E[D(real)] + drift + lambda GP,
    # on the linear critic (||w|| = 2, so GP = 1) with fakes that are all 2.0 (D(fake) = 2 sum(w))
    critic, real = _critic(2.0), _batch(4)
    w = critic.w.detach()
    terms = discriminator_step(make_ctx(ConstantG(SHAPE[1:]), critic, "wgan_gp", gp_lambda=7.0, drift_epsilon=0.01),
                               [real])
    d_real, d_fake = real.flatten(1) @ w, 2.0 * w.sum()
    assert terms["d_wasserstein"].item() == pytest.approx((d_fake - d_real.mean()).item(), rel=1e-5)
    expected = d_fake - d_real.mean() + 0.01 * d_real.square().mean() + 7.0 * (2.0 - 1.0) ** 2
    assert terms["d_loss"].item() == pytest.approx(expected.item(), rel=1e-5)

@pytest.mark.parametrize("family,mixing", [("progan", 0.0), ("stylegan_lite", 0.3)])
@pytest.mark.parametrize("reg_every,penalty", [(1, True), (4, False)])
def test_the_step_context_takes_every_loss_setting_from_the_config(family, mixing, reg_every, penalty):
    # the trainer and the memory estimate both build their step this way: a setting dropped here
    # would train (or trace) with the dataclass default instead of the user's value
    config = TrainConfig(family=family, gp_lambda=3.0, drift_epsilon=0.25, r1_gamma=7.0, mixing_prob=0.3)
    ctx = StepContext.from_config(config, family=family, loss="wgan_gp", reg_every=reg_every, generator=None,
                                  discriminator=None, stage=0, alpha=1.0, latent_dim=4, device=torch.device("cpu"),
                                  autocast=contextlib.nullcontext, backward=None)
    assert (ctx.gp_lambda, ctx.drift_epsilon, ctx.r1_gamma) == (3.0, 0.25, 7.0)
    assert ctx.mixing_prob == mixing  # style mixing is StyleGAN's (section 3.1); ProGAN has no styles
    assert ctx.penalty is penalty     # lazy regularization takes the penalty out of the D loss


# --- EMA ------------------------------------------------------------------------------------
def test_ema_beta_half_life_and_rampup():
    assert ema_beta(32, half_life_images=10_000, images_seen=10**6) == pytest.approx(0.5 ** (32 / 10_000))
    # ramp-up: the half-life is capped at images_seen * rampup = 1000 * 0.05 = 50 images
    assert ema_beta(32, half_life_images=10_000, images_seen=1000) == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(32, half_life_images=10_000, images_seen=1000, rampup=None) == pytest.approx(0.5 ** (32 / 10_000))
    assert ema_beta(32, half_life_images=10_000, images_seen=0) == 0.0  # first step copies the model


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_update_ema_after_k_steps(beta):
    model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    model.register_buffer("stat", torch.arange(4.0))
    ema.register_buffer("stat", torch.zeros(4))
    e0 = [p.detach().clone() for p in ema.parameters()]
    for _ in range(5):
        update_ema(ema, model, beta=beta)
    for start, p_ema, p in zip(e0, ema.parameters(), model.parameters()):
        torch.testing.assert_close(p_ema, p + beta ** 5 * (start - p))  # m + beta^k (e0 - m)
    torch.testing.assert_close(ema.stat, model.stat)  # buffers copied, not averaged


# --- the training step ----------------------------------------------------------------------
def _ctx(generator, discriminator, *, alpha=1.0, loss="logistic_r1", mixing_prob=0.0) -> StepContext:
    return StepContext(generator=generator, discriminator=discriminator, loss=loss, stage=2, alpha=alpha,
                       latent_dim=generator.config.latent_dim, device=torch.device("cpu"),
                       autocast=contextlib.nullcontext, backward=lambda t: t.backward(),
                       mixing_prob=mixing_prob, penalty=False)


def test_fade_reals_closed_form():
    x = torch.randn(2, 3, 8, 8)
    pooled = x.reshape(2, 3, 4, 2, 4, 2).mean(dim=(3, 5))                       # 2x2 box
    coarse = pooled.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)     # nearest up
    torch.testing.assert_close(fade_reals(x, 0.25), 0.75 * coarse + 0.25 * x)
    torch.testing.assert_close(fade_reals(x, 0.0), coarse)
    assert fade_reals(x, 1.0) is x


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_discriminator_step_shows_d_the_faded_reals(alpha):
    family = FAMILIES["progan"]
    torch.manual_seed(0)
    generator = family.generator_cls(family.presets["tiny"])
    critic = LinearCritic(torch.zeros(3 * 16 * 16))
    real = torch.randn(2, 3, 16, 16)
    discriminator_step(_ctx(generator, critic, alpha=alpha), [real])
    coarse = F.avg_pool2d(real, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    expected = torch.lerp(coarse, real, alpha)
    assert any(torch.allclose(seen, expected) for seen in critic.seen)
    if alpha < 1:
        assert not any(torch.allclose(seen, real) for seen in critic.seen)


@pytest.mark.parametrize("mixing_prob", [0.0, 1.0])
def test_w_avg_is_tracked_in_the_generator_step_only(mixing_prob):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    generator = family.generator_cls(family.presets["tiny"])
    critic = LinearCritic(torch.zeros(3 * 16 * 16))
    ctx = _ctx(generator, critic, mixing_prob=mixing_prob)
    discriminator_step(ctx, [torch.randn(4, 3, 16, 16)])
    assert torch.count_nonzero(generator.w_avg) == 0  # D step: G runs frozen, w_avg untouched
    torch.manual_seed(123)
    generator_step(ctx, batch_size=4, micro_batches=1)
    torch.manual_seed(123)
    z = torch.randn(4, generator.config.latent_dim)  # the step draws z first (mixing draws after)
    with torch.no_grad():
        expected = (1 - generator.config.w_avg_beta) * generator.mapping(z).mean(0)
    torch.testing.assert_close(generator.w_avg, expected)


def test_gradient_penalty_is_taken_on_the_real_fake_line():
    # D(x) = ||x||^2 / 2 has gradient x, so with real = 0 the penalty is mean((eps_i ||fake_i|| - 1)^2)
    # for the eps_i the function draws: the interpolates, not the reals or the fakes, are penalised.
    def quadratic(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).square().sum(1, keepdim=True)

    fake = _batch(10) * 3
    torch.manual_seed(42)
    gp = losses.gradient_penalty(quadratic, torch.zeros_like(fake), fake)
    torch.manual_seed(42)
    eps = torch.rand(SHAPE[0])
    expected = (eps * fake.flatten(1).norm(dim=1) - 1).square().mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_style_mixing_coin_mixes_below_the_probability_only(monkeypatch):
    """A minibatch mixes when ``rand < mixing_prob`` (rand uniform on [0, 1): probability exactly
    mixing_prob): a draw of exactly 0.25 at mixing_prob 0.25 does not mix, a draw of 0.125 does."""
    from progan.training.step import _generate

    class Recorder(nn.Module):
        config = type("Config", (), {"latent_dim": 4})()

        def forward(self, z, **kwargs):
            self.kwargs = kwargs
            return z

    for draw, mixes in ((0.25, False), (0.125, True)):
        monkeypatch.setattr(torch, "rand", lambda size, v=draw, **_: torch.full(size, v))  # the coin: rand(())
        g = Recorder()
        _generate(_ctx(g, nn.Identity(), mixing_prob=0.25), 3, training_w_avg=True)
        assert ("mix_z" in g.kwargs) == mixes, draw
