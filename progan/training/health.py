"""Stop requests and non-finite losses, agreed on by every process at the same step.

Each step folds its own non-finite check into one small device tensor, ``[stop, non-finite, -images
seen at the first non-finite step]``, without a host sync. Every ``--sync-every`` steps and before
anything is written the trainer max-reduces it across processes (``distributed.max_reduce_``), so
all ranks stop, or raise ``TrainingDiverged``, together and nothing is saved after a non-finite step
(stylegan2-ada checks NaNs on the host only at its tick/snapshot boundaries).

fp16: one GradScaler serves both optimizers and ``update()`` runs after every optimizer step (D, the
lazy-regularization D step, G), so its growth interval counts optimizer steps and an overflow in
either network halves the scale for both. Only the penalties depend on the scale (their input
gradients are scaled); so a non-finite penalty is excused exactly when D's own step was skipped
(``IterationTerms.d_skipped``), and any other non-finite term is divergence. So is a scale that fell
below 1: every step overflowed, even unscaled.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .distributed import max_reduce_
from .iteration import IterationTerms

__all__ = ["TrainingDiverged", "RunFlags", "PENALTY_TERMS"]

PENALTY_TERMS = ("d_gp", "d_r1", "d_dragan")  # the only terms that depend on the fp16 loss scale


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; nothing was saved after it."""


class RunFlags:
    """This process's stop and non-finite flags on ``device``, agreed on with the others by ``agree``."""

    def __init__(self, device: torch.device) -> None:
        # [stop, non-finite, -first non-finite images_seen]: max-reduced, so any rank's flag wins
        self.flags = torch.tensor([0.0, 0.0, -math.inf], dtype=torch.float64, device=device)

    def note(self, terms: IterationTerms, *, images_seen: int) -> None:
        """Fold one iteration's non-finite check into the flags (no host sync); ``images_seen`` before it."""
        d = [v for k, v in terms.d_terms.items()
             if k != "d_loss" and (k not in PENALTY_TERMS or not terms.d_skipped)]  # d_loss: the sum of the parts
        bad = ~torch.isfinite(torch.stack([*d, terms.g_terms["g_loss"]]).float()).all()
        # new_full is a fill kernel, not a host->device copy: nothing here waits for the GPU
        first = torch.where(bad, self.flags.new_full((), -float(images_seen)), self.flags.new_full((), -math.inf))
        self.flags[1:] = torch.maximum(self.flags[1:], torch.stack([bad.double(), first]))

    def agree(self, *, stop_requested: bool, images_seen: int, scaler: Any = None) -> tuple[bool, bool, int]:
        """One max-reduce: (any rank asked to stop, any non-finite loss, images_seen at the first one or -1)."""
        self.flags[0] = float(stop_requested)
        stop, bad, first = max_reduce_(self.flags).tolist()
        if scaler is not None and not bad and scaler.get_scale() < 1.0:  # every step overflowed, even unscaled
            bad, first = 1.0, -images_seen
        return stop > 0, bad > 0, int(-first) if bad else -1
