"""One training iteration, written once: D step -> lazy penalty -> G step -> EMA.

``train_iteration`` is the iteration both families train with (ProGAN appendix A.1: one D step and
one G step per minibatch, then the generator's EMA). The trainer (``training.trainer``), the memory
estimate (``training.memory``, on fake tensors) and the tests call it, so what is estimated or tested
is what trains. In order:

1. **D step**: ``step.discriminator_step`` (its penalty inside the D loss unless lazy), historical
   averaging's penalty of D (Salimans et al. 2016 section 3.3), the all-reduce of D's gradients
   (``training.distributed``), D's Adam step.
2. **Lazy penalty** (StyleGAN2 section 3.1): on every ``reg_every``-th iteration (counted from 0) the
   penalty alone, times ``reg_every``, as its own D optimizer step (``step.regularization_step``).
3. ``after_discriminator(d_terms)``: the trainer's ADA controller reads sign(D(real)) here; a change
   of p applies from this iteration's G step on.
4. **Unrolled D** (Metz et al. 2017, first order; ``tricks.unrolled_context``): G's step trains
   against a copy of D advanced ``unrolled_steps`` steps.
5. **G step**: ``step.generator_step`` (feature matching inside it), historical averaging's penalty of
   G, the all-reduce of G's gradients and of its persistent float buffers (``w_avg``), G's Adam step.
6. **EMA**: ``ema.update_ema`` with the caller's beta.

The minibatch of reals is handed over: its list is emptied after the D steps unless the G step reads
it (feature matching, the unrolled D), so its memory is free for G's graph, the peak of StyleGAN-lite
at high resolution. With fp16 a D step the GradScaler skipped (an overflow) is reported in
``d_skipped``: only then may a penalty be non-finite (``trainer``'s health check).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ContextManager, NamedTuple, Sequence

import torch
from torch import nn

from .distributed import all_reduce_gradients, all_reduce_mean_, persistent_float_buffers
from .ema import update_ema
from .step import StepContext, discriminator_step, generator_step, regularization_step
from .tricks import HistoricalAverage, unrolled_context

if TYPE_CHECKING:
    from .options import TrainConfig

__all__ = ["IterationSetup", "IterationTerms", "train_iteration"]


@dataclass
class IterationSetup:
    """What every iteration of a run uses and updates, built once: optimizers, EMA, tricks' state."""

    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    generator_ema: nn.Module
    reg_every: int = 1                        # lazy regularization interval K (1: penalty inside the D loss)
    unrolled_steps: int = 0                   # Metz et al. 2017: G trains against D advanced K steps
    historical_averaging: float = 0.0         # Salimans et al. 2016 section 3.3: the penalty's weight W
    history: dict[str, HistoricalAverage] | None = None  # "generator"/"discriminator" -> running sums
    averaged_buffers: Sequence[torch.Tensor] = ()  # G's persistent float buffers (w_avg): averaged over processes
    # all_reduce_mean_'s world/all_reduce: the memory trace passes a stand-in to trace the flat buffer in one process
    reduce_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: "TrainConfig", *, generator: nn.Module, discriminator: nn.Module,
                    generator_ema: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                    reg_every: int, reduce_options: dict[str, Any] | None = None) -> "IterationSetup":
        """The setup of a run of ``config`` (the trainer's and the memory estimate's): historical
        averaging's sums start at zero (a resume loads them into ``history``)."""
        history = ({"generator": HistoricalAverage(generator), "discriminator": HistoricalAverage(discriminator)}
                   if config.historical_averaging > 0 else None)
        return cls(opt_g=opt_g, opt_d=opt_d, generator_ema=generator_ema, reg_every=reg_every,
                   unrolled_steps=config.unrolled_steps, historical_averaging=config.historical_averaging,
                   history=history, averaged_buffers=persistent_float_buffers(generator),
                   reduce_options=dict(reduce_options or {}))


class IterationTerms(NamedTuple):
    d_terms: dict[str, torch.Tensor]  # D's log terms (device tensors): d_loss, its parts, the lazy penalty
    g_terms: dict[str, torch.Tensor]  # G's: g_loss and the tricks' terms
    d_skipped: bool                   # fp16: the GradScaler skipped a D step of this iteration (an overflow)


def _no_phase(name: str) -> ContextManager[None]:
    return contextlib.nullcontext()


def _step_was_skipped(optimizer: torch.optim.Optimizer) -> bool:
    # Accelerate's optimizer knows after its (fp16 GradScaler) step; a plain torch optimizer never skips
    return bool(getattr(optimizer, "step_was_skipped", False))


def _historical_penalty(setup: IterationSetup, name: str, module: nn.Module, ctx: StepContext) -> torch.Tensor:
    """Historical averaging (Salimans et al. 2016 section 3.3): backpropagate W * ||theta - mean||^2 into
    the player's gradients (identical on every process, so the all-reduce keeps it); returns the penalty."""
    assert setup.history is not None
    penalty = setup.history[name].step(module)
    ctx.backward(setup.historical_averaging * penalty)
    return penalty.detach()


def _discriminator_update(ctx: StepContext, setup: IterationSetup) -> bool:
    """Average D's gradients over processes, step its Adam, clear; True when the step was skipped."""
    all_reduce_gradients(ctx.discriminator, **setup.reduce_options)
    setup.opt_d.step()
    skipped = _step_was_skipped(setup.opt_d)  # read before anything else steps
    setup.opt_d.zero_grad(set_to_none=True)
    return skipped


def train_iteration(ctx: StepContext, setup: IterationSetup, reals: list[torch.Tensor], *,
                    labels: list[torch.Tensor] | None = None, step: int, ema_beta: float,
                    after_discriminator: Callable[[dict[str, torch.Tensor]], None] | None = None,
                    phase: Callable[[str], ContextManager[Any]] = _no_phase) -> IterationTerms:
    """One iteration on the micro-batches ``reals`` (``[N, C, H, W]`` each; their ``labels`` in a
    conditional run): updates D, G and the EMA generator in place and returns the log terms.

    ``step`` is the number of iterations before this one (the lazy penalty runs when ``step %
    reg_every == 0``), ``ema_beta`` the EMA's decay for this iteration. ``reals`` is emptied before
    the G step unless feature matching or the unrolled D read it. ``phase(name)`` wraps each part
    ("D step", "D penalty (lazy)", "unrolled D", "G step", "EMA"): the memory trace files its peaks so.
    """
    with_labels = {"labels": labels} if labels is not None else {}  # conditional runs only
    micro_batches, batch_size = len(reals), reals[0].shape[0]
    with phase("D step"):
        d_terms = discriminator_step(ctx, reals, **with_labels)
        if setup.history is not None:
            d_terms["d_historical"] = _historical_penalty(setup, "discriminator", ctx.discriminator, ctx)
        d_skipped = _discriminator_update(ctx, setup)
    if setup.reg_every > 1 and step % setup.reg_every == 0:
        with phase("D penalty (lazy)"):
            d_terms.update(regularization_step(ctx, reals, setup.reg_every, **with_labels))
            d_skipped = _discriminator_update(ctx, setup) or d_skipped
    if after_discriminator is not None:
        after_discriminator(d_terms)
    g_ctx = ctx
    if setup.unrolled_steps > 0:
        with phase("unrolled D"):
            g_ctx = unrolled_context(ctx, setup.opt_d, reals, steps=setup.unrolled_steps,
                                     discriminator_step=discriminator_step,
                                     all_reduce=lambda module: all_reduce_gradients(module, **setup.reduce_options),
                                     **with_labels)
    g_reals = reals if ctx.feature_matching > 0 else None
    if g_reals is None and setup.unrolled_steps == 0:
        reals.clear()  # nothing reads the minibatch any more: free it before G's graph is built
    with phase("G step"):
        g_terms = generator_step(g_ctx, batch_size, micro_batches, reals=g_reals, **with_labels)
        if setup.history is not None:
            g_terms["g_historical"] = _historical_penalty(setup, "generator", ctx.generator, ctx)
        all_reduce_gradients(ctx.generator, **setup.reduce_options)
        all_reduce_mean_(setup.averaged_buffers, **setup.reduce_options)  # w_avg, tracked on each rank's latents
        setup.opt_g.step()
        setup.opt_g.zero_grad(set_to_none=True)
    with phase("EMA"):
        update_ema(setup.generator_ema, ctx.generator, beta=ema_beta)
    return IterationTerms(d_terms, g_terms, d_skipped)
