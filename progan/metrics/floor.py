"""The floor of the metrics at a given sample size: held-out real images scored as if generated.

Papers: FID (Heusel et al. 2017, section 3), KID (Binkowski et al. 2018, section 3), improved
precision/recall (Kynkaanniemi et al. 2019, section 2); all through `features.compute_metrics`.

A generator that sampled the data distribution exactly would score like real images it was not
compared with. So `num_held_out` real images play the generated set against the other reals. The
held-out images must be a *uniformly random* subset: a dataset stored in an order that follows its
content (OpenMoji sorted by codepoint ends in skin-tone variants and extras) makes "the last N" a
different distribution, and the "floor" then measures that difference, not the sample size (issue 20:
FID 51.3 for the last 1,000 by name, 17.9 for a random 1,000). The permutation comes from a seeded
CPU `torch.Generator`, so a seed names the split on any machine.

Public API:
    held_out_split(num, num_held_out, *, seed) -> (reference indices, held-out indices)  # LongTensors
    real_floor(features, *, num_held_out, seed, kid_subset_size=1000) -> {"fid", "kid", "precision", "recall"}
"""
from __future__ import annotations

import torch

from .features import compute_metrics

__all__ = ["held_out_split", "real_floor"]


def held_out_split(num: int, num_held_out: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly random split of range(num): (reference, held_out) index tensors, each sorted."""
    if not 2 <= num_held_out <= num - 2:
        raise ValueError(f"the held-out count must leave at least 2 images on each side: {num_held_out} of {num}")
    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed))
    return order[num_held_out:].sort().values, order[:num_held_out].sort().values


def real_floor(features: torch.Tensor, *, num_held_out: int, seed: int,
               kid_subset_size: int = 1000) -> dict[str, float]:
    """Metrics of `num_held_out` random real features [N, D] against the other N - num_held_out."""
    reference, held_out = held_out_split(len(features), num_held_out, seed=seed)
    return compute_metrics(features[reference], features[held_out], seed=seed,
                           kid_subset_size=min(kid_subset_size, num_held_out, len(reference)))
