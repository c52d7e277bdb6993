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

``ctx.loss`` names the adversarial loss and the penalty together (``losses.split_loss``). Instance
noise (Sonderby et al. 2016; Arjovsky & Bottou 2017, section 3: noise on both distributions makes
their supports overlap, so D cannot be perfect and G's gradient does not vanish) is added by
``_critic`` as well, after the augmentation, to every image D sees: N(0, sigma^2) per pixel, with sigma
annealed linearly from ``--instance-noise`` to 0 over ``--instance-noise-kimg`` (``instance_noise_std``).
Penalties then differentiate D at the noisy points, as the noise is part of what D sees.

``--compile`` (``training.compiled``): ``ctx.compiled`` maps G and D to their compiled forwards, which
``_generate`` and ``_critic`` call instead of the modules; a gradient penalty always calls the eager D
(compiled graphs have no double backward), and a module not in the map (the unrolled D's copy) runs eager.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from ..losses import (combine_discriminator_terms, discriminator_fake_loss, discriminator_penalty,
                      discriminator_real_loss, generator_loss, split_loss)
from ..layers import downsample2x, upsample2x
from .tricks import feature_matching_generator_loss

if TYPE_CHECKING:
    from .options import TrainConfig

__all__ = ["StepContext", "fade_reals", "sample_labels", "discriminator_step", "regularization_step", "generator_step",
           "make_optimizers", "regularization_interval", "instance_noise_std", "current_grad_scale"]


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
    grad_scale: float | torch.Tensor = 1.0  # the GradScaler's scale (a device tensor: read without a sync)
    mixing_prob: float = 0.0                # StyleGAN style-mixing regularization (section 3.1)
    gp_lambda: float = 10.0
    drift_epsilon: float = 0.001
    r1_gamma: float = 10.0
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # applied to every image D sees
    penalty: bool = True                    # penalty inside the D loss (False: lazy, see regularization_step)
    # Salimans et al. 2016 section 3.1 (training.tricks): G's loss on D's features; generator_step needs reals
    feature_matching: float = 0.0
    feature_matching_mode: str = "replace"
    dragan_c: float = 0.5                   # DRAGAN perturbation: x + c * std(x) * U[0, 1)
    label_smoothing: float = 0.0            # one-sided: real targets 1 - alpha (logistic loss only)
    instance_noise: float = 0.0             # std of the Gaussian noise on every image D sees, this step
    class_weights: torch.Tensor | None = None  # conditional: images per class of the dataset (G-step labels)
    # --compile (training.compiled): module -> its compiled forward; penalties and unlisted modules run eager
    compiled: Mapping[nn.Module, Callable[..., Any]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: "TrainConfig", *, family: str, loss: str, reg_every: int,
                    images_seen: int = 0, **runtime: Any) -> "StepContext":
        """The context of one step of a run of ``config``: the loss hyper-parameters come from the
        config (style mixing only for StyleGAN-lite; the penalty inside the D loss unless lazy), the
        modules, stage and device plumbing from ``runtime``. The trainer and the memory estimate both
        build the context of their ``iteration.train_iteration`` through this. ``images_seen`` sets
        the annealed instance-noise std."""
        return cls(loss=loss, mixing_prob=config.mixing_prob if family == "stylegan_lite" else 0.0,
                   gp_lambda=config.gp_lambda, drift_epsilon=config.drift_epsilon, r1_gamma=config.r1_gamma,
                   penalty=reg_every == 1, feature_matching=config.feature_matching,
                   feature_matching_mode=config.feature_matching_mode,
                   dragan_c=config.dragan_c, label_smoothing=config.label_smoothing,
                   instance_noise=instance_noise_std(config, images_seen), **runtime)


def instance_noise_std(config: "TrainConfig", images_seen: int) -> float:
    """``--instance-noise`` annealed linearly to 0 over ``--instance-noise-kimg`` (0 afterwards)."""
    if config.instance_noise <= 0:
        return 0.0
    return config.instance_noise * max(0.0, 1.0 - images_seen / (config.instance_noise_kimg * 1000))


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
    return ctx.compiled.get(ctx.generator, ctx.generator)(z, **kwargs)


def _critic(ctx: StepContext, labels: torch.Tensor | None = None, *, penalty: bool = False,
            **kwargs: Any) -> Callable[[torch.Tensor], Any]:
    """D bound to the stage (and the labels of a conditional run), behind the augmentation and the
    instance noise: the only place D is called from. ``kwargs`` go to D (``features=True``: it returns
    (scores, features)). ``penalty``: the caller differentiates D's input gradient (WGAN-GP, R1,
    DRAGAN), so the eager D even under ``--compile``."""
    if labels is not None:
        kwargs["labels"] = labels
    augment, sigma = ctx.augment, ctx.instance_noise
    discriminator = ctx.discriminator if penalty else ctx.compiled.get(ctx.discriminator, ctx.discriminator)
    if augment is None and sigma <= 0:
        return lambda images: discriminator(images, stage=ctx.stage, alpha=ctx.alpha, **kwargs)

    def critic(images: torch.Tensor) -> Any:
        if augment is not None:
            images = augment(images)
        if sigma > 0:  # torch RNG: saved per rank, so a resumed run draws the same noise
            images = images + sigma * torch.randn_like(images)
        return discriminator(images, stage=ctx.stage, alpha=ctx.alpha, **kwargs)
    return critic


def _labels_of(labels: list[torch.Tensor] | None, i: int) -> torch.Tensor | None:
    return None if labels is None else labels[i]


def discriminator_step(ctx: StepContext, reals: list[torch.Tensor],
                       labels: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Accumulate D's gradients over the micro-batches in ``reals`` (with their ``labels`` in a
    conditional run); returns averaged log terms."""
    ctx.generator.requires_grad_(False)
    penalized = ctx.penalty and split_loss(ctx.loss)[1] != "none"  # the real half differentiates D twice
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
                ctx.loss, _critic(ctx, label, penalty=penalized), fade_reals(real, ctx.alpha), fake,
                gp_lambda=ctx.gp_lambda, drift_epsilon=ctx.drift_epsilon, r1_gamma=ctx.r1_gamma, dragan_c=ctx.dragan_c,
                label_smoothing=ctx.label_smoothing, grad_scale=ctx.grad_scale, penalty=ctx.penalty)
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
        if split_loss(ctx.loss)[1] == "wgan_gp":  # interpolates need fakes; R1 and DRAGAN look at reals only
            with torch.no_grad(), ctx.autocast():
                fake = _generate(ctx, real.shape[0], training_w_avg=False, labels=label).float()
        with ctx.autocast():
            loss, parts = discriminator_penalty(ctx.loss, _critic(ctx, label, penalty=True),
                                                fade_reals(real, ctx.alpha), fake,
                                                gp_lambda=ctx.gp_lambda, r1_gamma=ctx.r1_gamma,
                                                dragan_c=ctx.dragan_c, grad_scale=ctx.grad_scale)
        ctx.backward(loss * every / len(reals))
        for k, v in parts.items():
            terms[k] = terms.get(k, 0) + v.float() / len(reals)
    ctx.generator.requires_grad_(True)
    return terms


def generator_step(ctx: StepContext, batch_size: int, micro_batches: int, *,
                   reals: list[torch.Tensor] | None = None,
                   labels: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """G's step; ``reals`` (the D step's micro-batches, with their ``labels`` in a conditional run) are
    needed only by feature matching. The fakes' labels are drawn by ``sample_labels``."""
    if ctx.feature_matching > 0 and (reals is None or len(reals) != micro_batches):
        raise ValueError("feature matching needs the minibatch of reals: generator_step(..., reals=...)")
    trainable = [p for p in ctx.discriminator.parameters() if p.requires_grad]  # Freeze-D blocks stay frozen
    ctx.discriminator.requires_grad_(False)
    total = torch.zeros((), device=ctx.device)
    terms: dict[str, torch.Tensor] = {}
    for i in range(micro_batches):
        fake_labels = sample_labels(ctx, batch_size)
        with ctx.autocast():
            fake = _generate(ctx, batch_size, training_w_avg=True, labels=fake_labels)
            if ctx.feature_matching > 0:  # training.tricks, Salimans et al. 2016 section 3.1
                loss, parts = feature_matching_generator_loss(
                    _critic(ctx, fake_labels, features=True), fake, fade_reals(reals[i], ctx.alpha),
                    lambda scores: generator_loss(ctx.loss, scores), weight=ctx.feature_matching,
                    mode=ctx.feature_matching_mode,
                    real_critic=_critic(ctx, _labels_of(labels, i), features=True))
                for k, v in parts.items():
                    terms[k] = terms.get(k, 0) + v / micro_batches
            else:
                loss = generator_loss(ctx.loss, _critic(ctx, fake_labels)(fake))
        ctx.backward(loss / micro_batches)
        total += loss.detach().float() / micro_batches
    for p in trainable:
        p.requires_grad_(True)
    return {"g_loss": total, **terms}


def regularization_interval(config: "TrainConfig", loss: str) -> int:
    """K of lazy regularization for ``loss``'s penalty: ``--gp-every`` (WGAN-GP, DRAGAN), ``--r1-every``
    (R1), 1 without a penalty."""
    penalty = split_loss(loss)[1]
    if penalty == "none":
        return 1
    return config.r1_every if penalty == "r1" else config.gp_every


def make_optimizers(generator: nn.Module, discriminator: nn.Module, config: "TrainConfig", *,
                    reg_every: int = 1) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and D (ProGAN appendix A.1). With lazy regularization every ``reg_every`` > 1 steps,
    D's learning rate and betas are corrected by ``c = K / (K + 1)`` (StyleGAN2 appendix B)."""
    c = reg_every / (reg_every + 1) if reg_every > 1 else 1.0
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.g_lr, betas=(config.adam_beta1, config.adam_beta2),
                             eps=1e-8)
    # frozen parameters (Freeze-D, training/finetune.py) are left out, not merely gradient-free
    opt_d = torch.optim.Adam([p for p in discriminator.parameters() if p.requires_grad], lr=config.d_lr * c,
                             betas=(config.adam_beta1 ** c, config.adam_beta2 ** c), eps=1e-8)
    return opt_g, opt_d


def current_grad_scale(scaler) -> float | torch.Tensor:
    """The fp16 GradScaler's scale for the penalties' backward, without a host sync: its scale tensor once a
    loss has been scaled, and before that (the first step: torch creates the tensor lazily, in ``scale()``)
    its initial value. 1.0 without a scaler (fp32, bf16)."""
    if scaler is None:
        return 1.0
    scale = scaler._get_scale_async()
    return scaler.get_scale() if scale is None else scale  # get_scale() reads _init_scale then: no sync
