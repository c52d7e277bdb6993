"""GAN losses as pure functions of networks and tensors.

- WGAN-GP (Gulrajani et al. 2017, section 4, algorithm 1): ``D(fake) - D(real) + lambda * (||grad D(x_hat)|| - 1)^2``
  on random interpolates ``x_hat``, lambda = 10, as ProGAN uses (Karras et al. 2018, section 6 / appendix A).
- Drift (ProGAN appendix A.1): ``epsilon * D(real)^2`` with epsilon = 0.001 keeps scores near zero.
- Non-saturating logistic loss (Goodfellow et al. 2014, section 3) with the R1 penalty
  ``gamma / 2 * ||grad D(real)||^2`` (Mescheder et al. 2018, section 4.1), as StyleGAN (section 5 / appendix C).
- Lazy regularization (StyleGAN2, Karras et al. 2020, section 3.1 / appendix B): ``penalty=False``
  leaves the penalty out of the D loss; ``discriminator_penalty`` computes it alone, to be applied
  every k-th step, multiplied by k, as an optimizer step of its own.

Each function takes ``discriminator`` as a callable ``images -> scores [N, 1]`` (already bound to the
active stage/alpha), returns a scalar loss and a dict of detached terms for logging. Penalties run in
float32 even under autocast: squared gradient norms overflow fp16 easily, and the penalty's input
gradient is taken with autocast off (backward ops then keep the dtypes of the forward they mirror).

The D loss comes in two halves, ``discriminator_fake_loss`` and ``discriminator_real_loss`` (with the
penalty), so the training step can backpropagate the fake half and free its graph before the
penalty's double-backward graph is built, as stylegan2-ada's loss.py does (phases Dgen, then Dreal +
Dr1): peak memory is the larger of the two graphs instead of their sum.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "wgan_generator_loss",
    "gradient_penalty",
    "logistic_generator_loss",
    "r1_penalty",
    "generator_loss",
    "discriminator_loss",
    "discriminator_fake_loss",
    "discriminator_real_loss",
    "combine_discriminator_terms",
    "discriminator_penalty",
    "LOSSES",
]

Critic = Callable[[torch.Tensor], torch.Tensor]


def _input_gradients(scores: torch.Tensor, inputs: torch.Tensor, grad_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    # Under fp16 the backward pass through D runs in half precision: scale it up so small gradients
    # do not flush to zero, then unscale in float32. The factor is the GradScaler's scale applied to
    # the *mean* score, the quantity that scale is tuned for: applied to the sum, 2**16 itself
    # overflows fp16 (max 65504) at the first cast and the penalty is NaN. If the scale grows too
    # far the penalty overflows anyway; the scaler then skips the step and halves its scale.
    scale = grad_scale / scores.shape[0]  # grad_scale may be the GradScaler's scale tensor: no host sync
    with torch.autocast(inputs.device.type, enabled=False):
        (grad,) = torch.autograd.grad(scores.float().sum() * scale, inputs, create_graph=True)
    return grad.float().flatten(1) / scale                               # [N, C*H*W]


def gradient_penalty(discriminator: Critic, real: torch.Tensor, fake: torch.Tensor, *, target: float = 1.0,
                     grad_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """WGAN-GP: mean over the batch of ``(||grad D(x_hat)||_2 - target)^2``; x_hat on real-fake lines."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = torch.lerp(real.detach(), fake.detach(), eps).requires_grad_(True)
    grad = _input_gradients(discriminator(mixed), mixed, grad_scale)
    return (grad.norm(2, dim=1) - target).square().mean()


def r1_penalty(discriminator: Critic, real: torch.Tensor, *, grad_scale: float | torch.Tensor = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """R1: mean of ``||grad D(real)||^2``. Returns (penalty, real scores) so the scores are reused."""
    real = real.detach().requires_grad_(True)
    scores = discriminator(real)
    grad = _input_gradients(scores, real, grad_scale)
    return grad.square().sum(dim=1).mean(), scores


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.float().mean()


def logistic_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating: ``-log sigmoid(D(G(z)))`` = ``softplus(-D(G(z)))``."""
    return F.softplus(-fake_scores.float()).mean()


LOSSES = ("wgan_gp", "logistic_r1")


def generator_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    if name == "wgan_gp":
        return wgan_generator_loss(fake_scores)
    if name == "logistic_r1":
        return logistic_generator_loss(fake_scores)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def discriminator_fake_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """D's loss on fakes alone: ``mean D(fake)`` (WGAN) or ``mean softplus(D(fake))`` (logistic)."""
    if name == "wgan_gp":
        return fake_scores.float().mean()
    if name == "logistic_r1":
        return F.softplus(fake_scores.float()).mean()
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def discriminator_real_loss(
    name: str,
    discriminator: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_lambda: float = 10.0,
    drift_epsilon: float = 0.001,
    r1_gamma: float = 10.0,
    grad_scale: float | torch.Tensor = 1.0,
    penalty: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss on reals plus drift and the penalty (WGAN-GP interpolates use the detached ``fake``).

    Parts: ``real_adversarial`` (``-mean D(real)`` or ``mean softplus(-D(real))``), ``real_score``,
    ``real_sign``, and ``d_drift``/``d_gp`` or ``d_r1``."""
    if name == "wgan_gp":
        real_scores = discriminator(real).float()
        adversarial, drift = -real_scores.mean(), real_scores.square().mean()
        loss = adversarial + drift_epsilon * drift
        parts = {"d_drift": drift.detach()}
        if penalty:
            gp = gradient_penalty(discriminator, real, fake, grad_scale=grad_scale)
            loss, parts["d_gp"] = loss + gp_lambda * gp, gp.detach()
    elif name == "logistic_r1":
        if penalty:
            r1, real_scores = r1_penalty(discriminator, real, grad_scale=grad_scale)
        else:
            real_scores = discriminator(real.detach())
        real_scores = real_scores.float()
        adversarial = F.softplus(-real_scores).mean()
        loss, parts = adversarial, {}
        if penalty:
            loss, parts["d_r1"] = loss + r1_gamma / 2 * r1, r1.detach()
    else:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return loss, {"real_adversarial": adversarial.detach(), "real_score": real_scores.mean().detach(),
                  "real_sign": real_scores.detach().sign().mean(), **parts}


def combine_discriminator_terms(name: str, fake_loss: torch.Tensor, fake_scores: torch.Tensor,
                                real_loss: torch.Tensor, real_parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Log terms of the two halves: ``d_loss``, ``d_wasserstein`` or ``d_logistic``, scores, penalty."""
    parts = dict(real_parts)
    adversarial = fake_loss.detach() + parts.pop("real_adversarial")
    return {"d_loss": fake_loss.detach() + real_loss.detach(),
            ("d_wasserstein" if name == "wgan_gp" else "d_logistic"): adversarial,
            "fake_score": fake_scores.float().mean().detach(), **parts}


def discriminator_loss(
    name: str,
    discriminator: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_lambda: float = 10.0,
    drift_epsilon: float = 0.001,
    r1_gamma: float = 10.0,
    grad_scale: float | torch.Tensor = 1.0,
    penalty: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Both halves in one graph (the textbook form; the training step backpropagates them apart)."""
    fake_scores = discriminator(fake.detach()).float()
    fake_loss = discriminator_fake_loss(name, fake_scores)
    real_loss, real_parts = discriminator_real_loss(name, discriminator, real, fake, gp_lambda=gp_lambda,
                                                    drift_epsilon=drift_epsilon, r1_gamma=r1_gamma,
                                                    grad_scale=grad_scale, penalty=penalty)
    terms = combine_discriminator_terms(name, fake_loss, fake_scores, real_loss, real_parts)
    return fake_loss + real_loss, {k: v for k, v in terms.items() if k != "d_loss"}


def discriminator_penalty(
    name: str,
    discriminator: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_lambda: float = 10.0,
    r1_gamma: float = 10.0,
    grad_scale: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted penalty alone (lazy regularization): ``lambda * GP`` or ``gamma / 2 * R1``."""
    if name == "wgan_gp":
        gp = gradient_penalty(discriminator, real, fake, grad_scale=grad_scale)
        return gp_lambda * gp, {"d_gp": gp.detach()}
    if name == "logistic_r1":
        r1, _ = r1_penalty(discriminator, real, grad_scale=grad_scale)
        return r1_gamma / 2 * r1, {"d_r1": r1.detach()}
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
