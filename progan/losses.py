"""GAN losses as pure functions of networks and tensors.

- WGAN-GP (Gulrajani et al. 2017, section 4, algorithm 1): ``D(fake) - D(real) + lambda * (||grad D(x_hat)|| - 1)^2``
  on random interpolates ``x_hat``, lambda = 10, as ProGAN uses (Karras et al. 2018, section 6 / appendix A).
- Drift (ProGAN appendix A.1): ``epsilon * D(real)^2`` with epsilon = 0.001 keeps scores near zero.
- Non-saturating logistic loss (Goodfellow et al. 2014, section 3) with the R1 penalty
  ``gamma / 2 * ||grad D(real)||^2`` (Mescheder et al. 2018, section 4.1), as StyleGAN (section 5 / appendix C).
- Hinge loss (Lim & Ye 2017; Miyato et al. 2018, section 4): D minimizes
  ``relu(1 - D(real)) + relu(1 + D(fake))``, G minimizes ``-D(fake)``.
- Least squares (Mao et al. 2017, section 3.2, eq. 9): ``a = -1, b = 1, c = 0``, i.e. D minimizes
  ``1/2 (D(real) - 1)^2 + 1/2 (D(fake) + 1)^2`` and G ``1/2 D(fake)^2``. Of the paper's two codings this
  is the one its theorem is about (b - c = 1, b - a = 2: G then minimizes the Pearson chi^2 divergence,
  section 3.2.2) and the one the paper trains with; it also keeps scores centred on 0 like every other
  loss here, so ``real_sign`` (ADA's r_t) keeps its meaning.
- DRAGAN (Kodali et al. 2017, section 4): ``lambda * (||grad D(x_p)|| - 1)^2`` at points ``x_p`` near the
  reals. The paper writes ``x + delta``, delta ~ N(0, cI); the authors' released code (followed by
  compare_gan and most reimplementations) perturbs ``x + c * std(x) * U[0, 1)`` per element with
  c = 0.5 (std over the minibatch) and takes a uniformly random point on the segment from ``x``; so
  does ``dragan_penalty``, with lambda = 10 as in the paper.
- One-sided label smoothing (Salimans et al. 2016, section 3.4): with the logistic loss, real targets
  ``1 - alpha`` instead of 1 (fakes keep 0): D's real term becomes
  ``(1 - alpha) softplus(-D) + alpha softplus(D)``. Meaningless for WGAN/hinge (no targets) and LSGAN
  (its targets are a, b, c), so the options refuse it there.

A *loss name* is a recipe (``wgan_gp`` = WGAN + gradient penalty + drift, ``logistic_r1`` =
non-saturating logistic + R1; the only names before ``--penalty`` existed, so old configs and
checkpoints mean what they meant) or ``ADVERSARIAL+PENALTY`` (``hinge+none``, ``logistic+dragan``);
``split_loss`` parses it, ``loss_name`` writes it. The drift term belongs to the WGAN loss whatever
the penalty is.
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
    "dragan_penalty",
    "hinge_generator_loss",
    "lsgan_generator_loss",
    "split_loss",
    "loss_name",
    "LOSSES",
    "ADVERSARIAL",
    "PENALTIES",
    "RECIPES",
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
    mixed = torch.lerp(real.detach(), fake.detach(), eps)
    return _gradient_norm_penalty(discriminator, mixed, target=target, grad_scale=grad_scale)


def _gradient_norm_penalty(discriminator: Critic, points: torch.Tensor, *, target: float,
                           grad_scale: float | torch.Tensor) -> torch.Tensor:
    points = points.requires_grad_(True)
    grad = _input_gradients(discriminator(points), points, grad_scale)
    return (grad.norm(2, dim=1) - target).square().mean()


def dragan_penalty(discriminator: Critic, real: torch.Tensor, *, c: float = 0.5, target: float = 1.0,
                   grad_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """DRAGAN: mean of ``(||grad D(x_hat)|| - target)^2`` at ``x_hat = x + u * c * std(x) * U[0, 1)``,
    ``u ~ U[0, 1)`` per image: points in a one-sided box around each real (no fakes involved)."""
    real = real.detach()
    perturbed = real + c * real.std() * torch.rand_like(real)
    u = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    return _gradient_norm_penalty(discriminator, torch.lerp(real, perturbed, u), target=target,
                                  grad_scale=grad_scale)


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


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge (Miyato et al. 2018, section 4): G maximizes D(G(z)) without a margin, as WGAN's G does."""
    return wgan_generator_loss(fake_scores)


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN eq. 9: ``1/2 (D(G(z)) - c)^2`` with c = 0."""
    return 0.5 * fake_scores.float().square().mean()


ADVERSARIAL = ("wgan", "logistic", "hinge", "lsgan")
PENALTIES = ("none", "wgan_gp", "r1", "dragan")
RECIPES = {"wgan_gp": ("wgan", "wgan_gp"), "logistic_r1": ("logistic", "r1")}  # the names before --penalty
LOSSES = (*RECIPES, *ADVERSARIAL)  # what --loss accepts
_TERM = {"wgan": "d_wasserstein", "logistic": "d_logistic", "hinge": "d_hinge", "lsgan": "d_lsgan"}
_PENALTY_TERM = {"wgan_gp": "d_gp", "r1": "d_r1", "dragan": "d_dragan"}


def split_loss(name: str) -> tuple[str, str]:
    """``'wgan_gp'`` -> ``('wgan', 'wgan_gp')``, ``'hinge+none'`` -> ``('hinge', 'none')``."""
    if name in RECIPES:
        return RECIPES[name]
    adversarial, _, penalty = name.partition("+")
    if adversarial not in ADVERSARIAL or penalty not in PENALTIES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(RECIPES)} or ADVERSARIAL+PENALTY with "
                         f"ADVERSARIAL in {', '.join(ADVERSARIAL)} and PENALTY in {', '.join(PENALTIES)}")
    return adversarial, penalty


def loss_name(adversarial: str, penalty: str) -> str:
    """The inverse of ``split_loss``; a recipe's pair keeps the recipe's name."""
    for name, pair in RECIPES.items():
        if pair == (adversarial, penalty):
            return name
    return f"{adversarial}+{penalty}"


def generator_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    adversarial = split_loss(name)[0]
    if adversarial == "wgan":
        return wgan_generator_loss(fake_scores)
    if adversarial == "logistic":
        return logistic_generator_loss(fake_scores)
    if adversarial == "hinge":
        return hinge_generator_loss(fake_scores)
    return lsgan_generator_loss(fake_scores)


def discriminator_fake_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """D's loss on fakes alone: ``mean D(fake)`` (WGAN), ``mean softplus(D(fake))`` (logistic),
    ``mean relu(1 + D(fake))`` (hinge) or ``mean 1/2 (D(fake) + 1)^2`` (LSGAN, a = -1)."""
    adversarial, fake_scores = split_loss(name)[0], fake_scores.float()
    if adversarial == "wgan":
        return fake_scores.mean()
    if adversarial == "logistic":
        return F.softplus(fake_scores).mean()
    if adversarial == "hinge":
        return F.relu(1.0 + fake_scores).mean()
    return 0.5 * (fake_scores + 1.0).square().mean()


def _real_adversarial(adversarial: str, real_scores: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if adversarial == "wgan":
        return -real_scores.mean()
    if adversarial == "logistic":  # cross-entropy against the target 1 - alpha (one-sided smoothing)
        loss = F.softplus(-real_scores).mean()
        if label_smoothing:
            loss = (1.0 - label_smoothing) * loss + label_smoothing * F.softplus(real_scores).mean()
        return loss
    if adversarial == "hinge":
        return F.relu(1.0 - real_scores).mean()
    return 0.5 * (real_scores - 1.0).square().mean()  # LSGAN, b = 1


def discriminator_real_loss(
    name: str,
    discriminator: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_lambda: float = 10.0,
    drift_epsilon: float = 0.001,
    r1_gamma: float = 10.0,
    dragan_c: float = 0.5,
    label_smoothing: float = 0.0,
    grad_scale: float | torch.Tensor = 1.0,
    penalty: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss on reals plus drift (WGAN) and the penalty (WGAN-GP interpolates use the detached ``fake``).

    Parts: ``real_adversarial``, ``real_score``, ``real_sign``, ``d_drift`` (WGAN) and one of
    ``d_gp``/``d_r1``/``d_dragan`` when the penalty is inside the loss. ``label_smoothing`` only
    changes the logistic loss (the options refuse it elsewhere)."""
    adversarial, kind = split_loss(name)
    penalize = penalty and kind != "none"
    if penalize and kind == "r1":  # R1 differentiates D at the reals themselves: reuse those scores
        r1, real_scores = r1_penalty(discriminator, real, grad_scale=grad_scale)
    else:
        real_scores = discriminator(real.detach())
    real_scores = real_scores.float()
    adversarial_loss = _real_adversarial(adversarial, real_scores, label_smoothing)
    loss, parts = adversarial_loss, {}
    if adversarial == "wgan":
        drift = real_scores.square().mean()
        loss, parts["d_drift"] = loss + drift_epsilon * drift, drift.detach()
    if penalize and kind == "wgan_gp":
        gp = gradient_penalty(discriminator, real, fake, grad_scale=grad_scale)
        loss = loss + gp_lambda * gp
        parts["d_gp"] = gp.detach()
    elif penalize and kind == "r1":
        loss = loss + r1_gamma / 2 * r1
        parts["d_r1"] = r1.detach()
    elif penalize and kind == "dragan":
        dragan = dragan_penalty(discriminator, real, c=dragan_c, grad_scale=grad_scale)
        loss, parts["d_dragan"] = loss + gp_lambda * dragan, dragan.detach()
    return loss, {"real_adversarial": adversarial_loss.detach(), "real_score": real_scores.mean().detach(),
                  "real_sign": real_scores.detach().sign().mean(), **parts}


def combine_discriminator_terms(name: str, fake_loss: torch.Tensor, fake_scores: torch.Tensor,
                                real_loss: torch.Tensor, real_parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Log terms of the two halves: ``d_loss``, the adversarial term (``d_wasserstein``, ``d_logistic``,
    ``d_hinge`` or ``d_lsgan``), scores, drift and penalty."""
    parts = dict(real_parts)
    adversarial = fake_loss.detach() + parts.pop("real_adversarial")
    return {"d_loss": fake_loss.detach() + real_loss.detach(), _TERM[split_loss(name)[0]]: adversarial,
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
    dragan_c: float = 0.5,
    label_smoothing: float = 0.0,
    grad_scale: float | torch.Tensor = 1.0,
    penalty: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Both halves in one graph (the textbook form; the training step backpropagates them apart)."""
    fake_scores = discriminator(fake.detach()).float()
    fake_loss = discriminator_fake_loss(name, fake_scores)
    real_loss, real_parts = discriminator_real_loss(name, discriminator, real, fake, gp_lambda=gp_lambda,
                                                    drift_epsilon=drift_epsilon, r1_gamma=r1_gamma,
                                                    dragan_c=dragan_c, label_smoothing=label_smoothing,
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
    dragan_c: float = 0.5,
    grad_scale: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted penalty alone (lazy regularization): ``lambda * GP``, ``gamma / 2 * R1`` or
    ``lambda * DRAGAN``. Only WGAN-GP looks at ``fake``."""
    kind = split_loss(name)[1]
    if kind == "wgan_gp":
        gp = gradient_penalty(discriminator, real, fake, grad_scale=grad_scale)
        return gp_lambda * gp, {"d_gp": gp.detach()}
    if kind == "r1":
        r1, _ = r1_penalty(discriminator, real, grad_scale=grad_scale)
        return r1_gamma / 2 * r1, {"d_r1": r1.detach()}
    if kind == "dragan":
        dragan = dragan_penalty(discriminator, real, c=dragan_c, grad_scale=grad_scale)
        return gp_lambda * dragan, {"d_dragan": dragan.detach()}
    raise ValueError(f"loss {name!r} has no penalty to apply lazily")
