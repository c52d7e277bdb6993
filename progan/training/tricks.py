"""Stabilization tricks from "Improved Techniques for Training GANs" (Salimans et al. 2016) and
"Unrolled Generative Adversarial Networks" (Metz et al. 2017), as training options.

- **Feature matching** (Salimans section 3.1), ``--feature-matching W``: G's objective is
  ``||E_x f(x) - E_z f(G(z))||_2^2`` with ``f`` an intermediate layer of D, here the activations
  of D's last 3x3 conv, before its two dense layers (``Discriminator(..., features=True)``). The
  expectations are minibatch means; ``f(real)`` is a constant for G (D is frozen in G's step).
  ``--feature-matching-mode replace`` (the paper's: G's loss is ``W * FM``) or ``add`` (G's usual
  adversarial loss ``+ W * FM``). Reals are the minibatch D just saw, faded and augmented as D sees them.
- **Historical averaging** (section 3.3), ``--historical-averaging W``: each player's loss gets
  ``W * ||theta - (1/t) sum_{i=1}^t theta[i]||^2``, theta[i] its parameters at past step i. Here
  the average runs over the parameters held at the start of each of that player's steps, this one
  included (so the penalty is 0 at the first step) and is a constant for the gradient. Sums are kept
  in float64 and checkpointed, so a resume continues bit for bit. Every parameter counts, also
  those of resolutions not trained yet: they sit at their initial value until their stage starts,
  and the average then pulls them back toward it, as the formula says.
- **Minibatch discrimination** (section 3.2) is an architecture change of D:
  ``progan.minibatch_discrimination``, built through ``discriminator_kwargs``.
- **Unrolled discriminator** (Metz et al. section 2, eq. 5-7), ``--unrolled-steps K``: G's update
  uses ``D_K``, a copy of D advanced K steps of D's own optimizer (Adam, with its state) and D's own
  loss (penalty every step, even when the real D's is lazy). The copy is a deep copy of D and of its
  Adam state, so D's parameters and Adam state are untouched. **First order**: G's gradient goes
  through ``D_K(G(z))`` only; the paper's second term, ``dL/dtheta_D^K * dtheta_D^K/dtheta_G`` (how D
  would react to G's change, section 2.2), is dropped. That is an approximation that many
  implementations use, not the paper's full method. The K steps reuse the current minibatch of reals
  (no extra data is drawn, so the data stream and kimg are unchanged) with fresh latents each step.
- Virtual batch norm (section 3.4) does not apply: neither network has batch norm.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Callable

import torch
from torch import nn

from ..minibatch_discrimination import parse_minibatch_discrimination

# options and step import this module: the config (a TrainConfig) and the step context (a StepContext)
# are typed Any here, as even a TYPE_CHECKING import would be an import cycle.
TrainConfig = StepContext = Any

__all__ = ["FEATURE_MATCHING_MODES", "validate_tricks", "discriminator_kwargs", "feature_matching_loss",
           "HistoricalAverage", "unrolled_context", "tricks_summary", "check_resume_architecture"]

FEATURE_MATCHING_MODES = ("replace", "add")


def validate_tricks(config: TrainConfig) -> None:
    """One-line errors for the options of this module (called by ``TrainConfig.__post_init__``)."""
    for name in ("feature_matching", "historical_averaging"):
        if not getattr(config, name) >= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)}")
    if config.feature_matching_mode not in FEATURE_MATCHING_MODES:
        raise ValueError(f"--feature-matching-mode must be one of {FEATURE_MATCHING_MODES}, "
                         f"got {config.feature_matching_mode!r}")
    if config.unrolled_steps < 0:
        raise ValueError(f"--unrolled-steps must be >= 0, got {config.unrolled_steps}")
    if config.unrolled_steps > 0 and config.mixed_precision == "fp16":
        raise ValueError("--unrolled-steps needs --mixed-precision no or bf16: the unrolled D copy takes plain "
                         "optimizer steps without fp16 loss scaling")
    parse_minibatch_discrimination(config.minibatch_discrimination)


def discriminator_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Architecture options of D that live in the TrainConfig: ``Discriminator(model_config, **these)``."""
    spec = parse_minibatch_discrimination(config.minibatch_discrimination)
    return {} if spec is None else {"minibatch_discrimination": spec}


def check_resume_architecture(saved_train_config: str, config: TrainConfig, path: Any) -> None:
    """Refuse a resume whose D was built with another ``--minibatch-discrimination`` (one line)."""
    saved = json.loads(saved_train_config).get("minibatch_discrimination", "")
    if parse_minibatch_discrimination(saved) != parse_minibatch_discrimination(config.minibatch_discrimination):
        raise ValueError(f"{path} was trained with --minibatch-discrimination {saved!r}, not "
                         f"{config.minibatch_discrimination!r}: D's architecture differs; use the same option or another --out")


def tricks_summary(config: TrainConfig) -> dict[str, Any]:
    """The options of this module that are on, for the exported model's summary (its model card)."""
    out: dict[str, Any] = {}
    if config.feature_matching > 0:
        out["feature_matching"] = {"weight": config.feature_matching, "mode": config.feature_matching_mode}
    if config.historical_averaging > 0:
        out["historical_averaging"] = config.historical_averaging
    if config.minibatch_discrimination:
        out["minibatch_discrimination"] = config.minibatch_discrimination
    if config.unrolled_steps > 0:
        out["unrolled_steps"] = config.unrolled_steps
    return out


# --- feature matching (section 3.1) -----------------------------------------------------------

def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """``||mean_i f(real_i) - mean_i f(fake_i)||_2^2`` over ``[N, F]`` features (float32)."""
    return (real_features.float().mean(dim=0) - fake_features.float().mean(dim=0)).square().sum()


def feature_matching_generator_loss(critic: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                                    fake: torch.Tensor, real: torch.Tensor, adversarial: Callable[[torch.Tensor], torch.Tensor],
                                    *, weight: float, mode: str,
                                    real_critic: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
                                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss with feature matching. ``critic`` maps images to (scores, features) and is D bound to
    the stage behind its augmentation; ``adversarial`` maps fake scores to G's usual loss.
    ``real_critic`` (default ``critic``) scores the reals: a conditional D is bound to their labels."""
    with torch.no_grad():  # f(real) is a constant for G
        _, real_features = (critic if real_critic is None else real_critic)(real)
    fake_scores, fake_features = critic(fake)
    fm = feature_matching_loss(real_features, fake_features)
    loss = weight * fm if mode == "replace" else adversarial(fake_scores) + weight * fm
    return loss, {"g_feature_matching": fm.detach()}


# --- historical averaging (section 3.3) -------------------------------------------------------

class HistoricalAverage:
    """Running average of a module's parameters and the penalty ``||theta - average||^2``.

    ``step(module)`` adds the current parameters to the float64 sums, counts one more step, and returns
    ``sum_p ||p - sum_p / t||^2`` (float32, differentiable in ``p``; the average is a constant).
    """

    def __init__(self, module: nn.Module) -> None:
        self.count = 0
        self.sums = {name: torch.zeros_like(p, dtype=torch.float64, memory_format=torch.preserve_format)
                     for name, p in module.named_parameters()}

    def step(self, module: nn.Module) -> torch.Tensor:
        self.count += 1
        total = None
        for name, p in module.named_parameters():
            self.sums[name] += p.detach()
            mean = (self.sums[name] / self.count).to(p.dtype)
            term = (p - mean).float().square().sum()
            total = term if total is None else total + term
        assert total is not None, "a module without parameters"
        return total

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sums": {k: v.cpu() for k, v in self.sums.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["sums"]) != set(self.sums):
            raise ValueError("historical-averaging state does not match the network's parameters")
        self.count = int(state["count"])
        for k, v in state["sums"].items():
            self.sums[k].copy_(v)


# --- unrolled discriminator (Metz et al. 2017, section 2) -------------------------------------

def unrolled_context(ctx: StepContext, optimizer: torch.optim.Optimizer, reals: list[torch.Tensor], *,
                     steps: int, discriminator_step: Callable[..., Any],
                     all_reduce: Callable[[nn.Module], None] | None = None,
                     labels: list[torch.Tensor] | None = None) -> StepContext:
    """A copy of ``ctx`` whose discriminator is D advanced ``steps`` optimizer steps (first order).

    ``optimizer`` is D's; its state is deep-copied into a fresh optimizer of the same class over the
    copy's parameters, so neither D nor ``optimizer`` changes. ``discriminator_step`` is
    ``step.discriminator_step`` (passed in, so this module does not import the step), run on
    ``reals`` (and their ``labels`` in a conditional run) every time with fresh latents; ``all_reduce``
    averages the copy's gradients over processes.
    """
    if steps == 0:
        return ctx
    d_copy = copy.deepcopy(ctx.discriminator).requires_grad_(True)
    d_copy.zero_grad(set_to_none=True)
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
    opt = type(inner)(d_copy.parameters(), **inner.defaults)
    # deep copy: load_state_dict keeps tensors that need no cast, and Adam updates them in place
    opt.load_state_dict(copy.deepcopy(inner.state_dict()))
    unrolled = dataclasses.replace(ctx, discriminator=d_copy, backward=lambda loss: loss.backward(),
                                   grad_scale=1.0, penalty=True)
    for _ in range(steps):
        discriminator_step(unrolled, reals, **({} if labels is None else {"labels": labels}))
        if all_reduce is not None:
            all_reduce(d_copy)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return dataclasses.replace(ctx, discriminator=d_copy)  # G's step keeps the accelerator's backward
