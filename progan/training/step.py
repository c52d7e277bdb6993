"""One optimisation step of D and of G, shared by both families.

ProGAN (appendix A.1) alternates one D step and one G step per minibatch. While G trains, D's
parameters are frozen (``requires_grad_(False)``) so no gradient reaches them, and vice versa (G's
fakes are detached for the D step). Gradients are averaged across processes explicitly
(``training.distributed``: one flat in-place all-reduce of the *active* parameters, as NVlabs
stylegan3's training loop does; stylegan2-ada still used DDP) rather than through DDP's reducer: the
set of parameters with gradients changes with the stage, and DDP's hooks do not support the double
backward of gradient penalties. Every process runs the same stage, so the sets agree.

The D step backpropagates its fake half first and its real half (with the penalty) second, as
stylegan2-ada's loss.py (Dgen, then Dreal + Dr1): the fake graph is freed before the penalty's
double-backward graph exists, which bounds peak memory at high resolution.

Augmentation (``training.augment``) is applied by the one function that calls D, ``_critic``: every
image D sees -- reals, fakes, WGAN-GP interpolates, R1's reals, in the D and the G step -- is augmented
exactly once, and penalties differentiate through the augmentation to the un-augmented input
(as stylegan2-ada). With lazy regularization (StyleGAN2 section 3.1) the D step leaves the penalty
out (``penalty=False``) and ``regularization_step`` applies it every k-th step, times k.

Class-conditional runs (``--cond``; ``progan.conditioning``): D scores every image with its label
(projection discriminator, Miyato & Koyama 2018 section 3). Fakes in the D step take the labels of
the micro-batch's reals, which are random dataset images, so their labels follow the dataset's label
distribution (stylegan2-ada draws the labels of other random dataset images: the same distribution) and
a WGAN-GP interpolate between a real and a fake has one well-defined label. Fakes in the G step draw
labels from the dataset's class counts (``StepContext.class_weights``) with the per-rank torch RNG that
checkpoints save, so latents and labels are deterministic and resume exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from ..losses import (combine_discriminator_terms, discriminator_fake_loss, discriminator_penalty,
                      discriminator_real_loss, generator_loss)
from ..layers import downsample2x, upsample2x

if TYPE_CHECKING:
    from .options import TrainConfig

__all__ = ["StepContext", "fade_reals", "sample_labels", "discriminator_step", "regularization_step", "generator_step",
           "make_optimizers", "regularization_interval"]


@dataclass
class StepContext:
    generator: nn.Module
    discriminator: nn.Module
    loss: str
    stage: int
    alpha: float
    latent_dim: int
    device: torch.device
    autocast: Callable[[], Any]             # accelerator.autocast
    backward: Callable[[torch.Tensor], None]  # accelerator.backward (applies the fp16 loss scale)
    reduce_mean: Callable[[torch.Tensor], torch.Tensor]
    grad_scale: float | torch.Tensor = 1.0  # the GradScaler's scale (a device tensor: read without a sync)
    mixing_prob: float = 0.0                # StyleGAN style-mixing regularization (section 3.1)
    gp_lambda: float = 10.0
    drift_epsilon: float = 0.001
    r1_gamma: float = 10.0
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # applied to every image D sees
    penalty: bool = True                    # penalty inside the D loss (False: lazy, see regularization_step)
    class_weights: torch.Tensor | None = None  # conditional: images per class of the dataset (G-step labels)

    @classmethod
    def from_config(cls, config: "TrainConfig", *, family: str, loss: str, reg_every: int,
                    **runtime: Any) -> "StepContext":
        """The context of one step of a run of ``config``: the loss hyper-parameters come from the
        config (style mixing only for StyleGAN-lite; the penalty inside the D loss unless lazy), the
        modules, stage and device plumbing from ``runtime``. The trainer and the memory estimate both
        build their step through this, so the estimate traces the step that trains."""
        return cls(loss=loss, mixing_prob=config.mixing_prob if family == "stylegan_lite" else 0.0,
                   gp_lambda=config.gp_lambda, drift_epsilon=config.drift_epsilon, r1_gamma=config.r1_gamma,
                   penalty=reg_every == 1, **runtime)


def fade_reals(reals: torch.Tensor, alpha: float) -> torch.Tensor:
    """During a fade-in D sees reals blended like G's output (ProGAN section 2 / reference code)."""
    if alpha >= 1.0:
        return reals
    return torch.lerp(upsample2x(downsample2x(reals)), reals, alpha)


def sample_labels(ctx: StepContext, batch_size: int) -> torch.Tensor | None:
    """Class indices ``[N]`` drawn from the dataset's label distribution; None for an unconditional run."""
    if ctx.class_weights is None:
        return None
    return torch.multinomial(ctx.class_weights.float(), batch_size, replacement=True)


def _generate(ctx: StepContext, batch_size: int, *, training_w_avg: bool,
              labels: torch.Tensor | None = None) -> torch.Tensor:
    z = torch.randn(batch_size, ctx.latent_dim, device=ctx.device)
    kwargs: dict[str, Any] = {"stage": ctx.stage, "alpha": ctx.alpha}
    if labels is not None:
        kwargs["labels"] = labels
    if ctx.mixing_prob > 0:
        kwargs["update_w_avg"] = training_w_avg
        active_ws = 2 * ctx.stage + 2
        # one crossover per minibatch, uniform over the active layers (reference implementation)
        if active_ws > 1 and torch.rand(()).item() < ctx.mixing_prob:  # torch RNG: saved per rank
            kwargs["mix_z"] = torch.randn(batch_size, ctx.latent_dim, device=ctx.device)
            kwargs["crossover"] = int(torch.randint(1, active_ws, ()))
    elif hasattr(ctx.generator, "update_w_avg"):
        kwargs["update_w_avg"] = training_w_avg
    return ctx.generator(z, **kwargs)


def _critic(ctx: StepContext, labels: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """D bound to the stage (and the labels of a conditional run), behind the augmentation: the only
    place D is called from."""
    augment = ctx.augment
    kwargs: dict[str, Any] = {"stage": ctx.stage, "alpha": ctx.alpha}
    if labels is not None:
        kwargs["labels"] = labels
    if augment is None:
        return lambda images: ctx.discriminator(images, **kwargs)
    return lambda images: ctx.discriminator(augment(images), **kwargs)


def _labels_of(labels: list[torch.Tensor] | None, i: int) -> torch.Tensor | None:
    return None if labels is None else labels[i]


def discriminator_step(ctx: StepContext, reals: list[torch.Tensor],
                       labels: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Accumulate D's gradients over the micro-batches in ``reals`` (with their ``labels`` in a
    conditional run); returns averaged log terms."""
    ctx.generator.requires_grad_(False)
    terms: dict[str, torch.Tensor] = {}
    for i, real in enumerate(reals):
        label = _labels_of(labels, i)
        critic = _critic(ctx, label)
        with torch.no_grad(), ctx.autocast():
            fake = _generate(ctx, real.shape[0], training_w_avg=False, labels=label).float()
        with ctx.autocast():
            fake_scores = critic(fake)
            fake_loss = discriminator_fake_loss(ctx.loss, fake_scores)
        ctx.backward(fake_loss / len(reals))  # frees the fake graph before the penalty graph is built
        with ctx.autocast():
            real_loss, real_parts = discriminator_real_loss(
                ctx.loss, critic, fade_reals(real, ctx.alpha), fake, gp_lambda=ctx.gp_lambda,
                drift_epsilon=ctx.drift_epsilon, r1_gamma=ctx.r1_gamma, grad_scale=ctx.grad_scale,
                penalty=ctx.penalty)
        ctx.backward(real_loss / len(reals))
        parts = combine_discriminator_terms(ctx.loss, fake_loss, fake_scores, real_loss, real_parts)
        for k, v in parts.items():
            terms[k] = terms.get(k, 0) + v.float() / len(reals)
    ctx.generator.requires_grad_(True)
    return terms


def regularization_step(ctx: StepContext, reals: list[torch.Tensor], every: int,
                        labels: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Lazy regularization (StyleGAN2 section 3.1): D's penalty alone, multiplied by ``every`` so its
    average strength is unchanged, accumulated over ``reals``; the caller steps D's optimizer."""
    ctx.generator.requires_grad_(False)
    terms: dict[str, torch.Tensor] = {}
    for i, real in enumerate(reals):
        label = _labels_of(labels, i)
        fake = real
        if ctx.loss == "wgan_gp":  # interpolates need fakes; R1 looks at reals only
            with torch.no_grad(), ctx.autocast():
                fake = _generate(ctx, real.shape[0], training_w_avg=False, labels=label).float()
        with ctx.autocast():
            loss, parts = discriminator_penalty(ctx.loss, _critic(ctx, label), fade_reals(real, ctx.alpha), fake,
                                                gp_lambda=ctx.gp_lambda, r1_gamma=ctx.r1_gamma,
                                                grad_scale=ctx.grad_scale)
        ctx.backward(loss * every / len(reals))
        for k, v in parts.items():
            terms[k] = terms.get(k, 0) + v.float() / len(reals)
    ctx.generator.requires_grad_(True)
    return terms


def generator_step(ctx: StepContext, batch_size: int, micro_batches: int) -> dict[str, torch.Tensor]:
    ctx.discriminator.requires_grad_(False)
    total = torch.zeros((), device=ctx.device)
    for _ in range(micro_batches):
        labels = sample_labels(ctx, batch_size)
        with ctx.autocast():
            fake = _generate(ctx, batch_size, training_w_avg=True, labels=labels)
            loss = generator_loss(ctx.loss, _critic(ctx, labels)(fake))
        ctx.backward(loss / micro_batches)
        total += loss.detach().float() / micro_batches
    ctx.discriminator.requires_grad_(True)
    return {"g_loss": total}


def regularization_interval(config: "TrainConfig", loss: str) -> int:
    """K of lazy regularization for ``loss``: ``--gp-every`` (WGAN-GP) or ``--r1-every`` (R1)."""
    return config.gp_every if loss == "wgan_gp" else config.r1_every


def make_optimizers(generator: nn.Module, discriminator: nn.Module, config: "TrainConfig", *,
                    reg_every: int = 1) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and D (ProGAN appendix A.1). With lazy regularization every ``reg_every`` > 1 steps,
    D's learning rate and betas are corrected by ``c = K / (K + 1)`` (StyleGAN2 appendix B)."""
    c = reg_every / (reg_every + 1) if reg_every > 1 else 1.0
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.g_lr, betas=(config.adam_beta1, config.adam_beta2),
                             eps=1e-8)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.d_lr * c,
                             betas=(config.adam_beta1 ** c, config.adam_beta2 ** c), eps=1e-8)
    return opt_g, opt_d
