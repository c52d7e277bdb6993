"""Memorization check: each generated sample's nearest training image in Inception feature space.

The question "did the generator copy its training images?" is answered the way the memorization
studies of GANs do it: embed generated and real images with the metrics' Inception pool_3 features
(Heusel et al. 2017, section 3; ``progan.metrics.features``), find each sample's nearest real
neighbour (L2 in feature space), and compare that distance with how close real images are to
*each other*. The yardstick is the median real-to-real nearest-neighbour distance (each real image
against the rest of the set, itself excluded): a sample closer to some training image than half of
the training images are to their own nearest neighbour is suspiciously close. A generator that
reproduces training images verbatim scores a fraction near 1; one that draws new images scores
low (the fraction for held-out real images is the reference, about 0.5 by construction when the
held-out and training images come from the same distribution). Real features come from the same
cache as FID (``real_statistics``), so a second check costs only the generated samples.

Public API:
    nearest_neighbours(queries, reference, *, exclude_self=False, batch_size=1024) -> (dist [N], index [N])
    memorization(fake_features, real_features) -> Memorization
    check_generator(generator, network, real_features, *, num, pairs=16, ...) -> (Memorization, closest images)
    pairs_figure(pairs, *, cell=None) -> PIL image of (generated | nearest real) pairs with distances
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from ..images import images_to_uint8
from .features import FeatureNetwork, latents_for_indices

__all__ = ["Memorization", "nearest_neighbours", "memorization", "check_generator", "pairs_figure"]


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, *, exclude_self: bool = False,
                       batch_size: int = 1024, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 distance ``[N]`` and index ``[N]`` of each query's nearest row of ``reference`` ``[M, D]``.

    ``exclude_self``: ``queries`` *is* ``reference`` and row i may not pick itself (real-to-real NN).
    Distances are computed ``batch_size`` rows at a time in ``dtype`` (float64: exact enough that a copy
    is at distance ~0; float32 is 4x faster and fine for a median), so 50k x 50k fits in memory.
    """
    if queries.ndim != 2 or reference.ndim != 2 or queries.shape[1] != reference.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D] with the same D; got {tuple(queries.shape)} "
                         f"and {tuple(reference.shape)}")
    if exclude_self and (queries.shape != reference.shape or reference.shape[0] < 2):
        raise ValueError("exclude_self needs the same [N, D] set twice, with at least 2 rows")
    if reference.shape[0] < 1:
        raise ValueError("no reference features to search")
    ref = reference.to(dtype)
    dists, indices = [], []
    for start in range(0, queries.shape[0], batch_size):
        d = torch.cdist(queries[start:start + batch_size].to(dtype), ref)  # [B, M]
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = float("inf")
        best = d.min(dim=1)
        dists.append(best.values)
        indices.append(best.indices)
    return torch.cat(dists), torch.cat(indices)


@dataclass(frozen=True)
class Memorization:
    """Result of ``memorization``: per-sample NN distance and index, and the real-to-real yardstick."""

    distances: torch.Tensor      # [N] float64, sample i -> its nearest real image
    indices: torch.Tensor        # [N] int64, which real image
    real_distances: torch.Tensor  # [M] float64, real j -> its nearest *other* real image
    threshold: float             # median of real_distances
    fraction_below: float        # fraction of samples with distance < threshold

    def closest(self, k: int) -> list[int]:
        """Indices of the ``k`` samples nearest to a training image, closest first."""
        return torch.argsort(self.distances)[:k].tolist()

    def summary(self) -> dict[str, float]:
        d = self.distances
        return {"nearest_fraction_below": self.fraction_below, "nearest_threshold": self.threshold,
                "nearest_median_distance": float(d.quantile(0.5)), "nearest_min_distance": float(d.min()),
                "num_generated": int(d.numel()), "num_real": int(self.real_distances.numel())}


def memorization(fake_features: torch.Tensor, real_features: torch.Tensor) -> Memorization:
    """Nearest real neighbour of every sample, and the fraction closer than the median real-to-real NN."""
    real = torch.as_tensor(real_features).float()
    fake = torch.as_tensor(fake_features).float()
    if real.shape[0] < 2:
        raise ValueError(f"need at least 2 real images for real-to-real distances, got {real.shape[0]}")
    real_distances, _ = nearest_neighbours(real, real, exclude_self=True)
    threshold = float(real_distances.quantile(0.5))  # the usual median: the mean of the middle two when M is even
    distances, indices = nearest_neighbours(fake, real)
    fraction = float((distances < threshold).double().mean())
    return Memorization(distances, indices, real_distances, threshold, fraction)


@torch.no_grad()
def check_generator(generator: torch.nn.Module, network: FeatureNetwork, real_features: torch.Tensor, *, num: int,
                    pairs: int = 16, batch_size: int = 64, seed: int = 0,
                    generator_kwargs: Mapping[str, Any] | None = None,
                    progress: bool = False) -> tuple[Memorization, dict[int, np.ndarray]]:
    """``memorization`` of ``num`` samples (sample i uses latent i of ``seed``, as ``evaluate.py``).

    Returns it with the uint8 ``[H, W, 3]`` pixels of the ``pairs`` samples closest to a training
    image, by sample index. Only those are kept while the samples stream through the network, so
    memory stays ``O(pairs)`` images whatever ``num`` is.
    """
    if num < 1 or pairs < 0:
        raise ValueError(f"need num >= 1 and pairs >= 0; got num={num}, pairs={pairs}")
    device = next(generator.parameters()).device
    kwargs = dict(generator_kwargs or {})
    real = torch.as_tensor(real_features).float()
    kept: list[tuple[float, int, np.ndarray]] = []  # the closest so far, (distance, index, pixels)
    features = []
    with tqdm(total=num, disable=not progress, unit="img", desc="nearest") as bar:
        for start in range(0, num, batch_size):
            index = list(range(start, min(start + batch_size, num)))
            z = latents_for_indices(index, generator.config.latent_dim, seed=seed).to(device)
            pixels = images_to_uint8(generator(z, **kwargs))               # [B, 3, R, R] uint8
            batch = network(pixels).float().cpu()                          # [B, D]
            features.append(batch)
            dist, _ = nearest_neighbours(batch, real)
            kept += [(float(d), i, pixels[j].permute(1, 2, 0).cpu().numpy()) for j, (d, i) in enumerate(zip(dist, index))]
            kept = sorted(kept, key=lambda t: t[0])[:pairs]
            bar.update(len(index))
    result = memorization(torch.cat(features), real)
    return result, {i: image for _, i, image in kept}


def pairs_figure(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], *, cell: int | None = None,
                 columns: int = 4) -> Image.Image:
    """``(generated [H, W, 3] uint8, nearest real [H, W, 3] uint8, label)`` pairs side by side.

    Each pair is two cells (generated left, real right) with its label underneath; ``columns``
    pairs per row; images enlarged (nearest) to ``cell`` pixels, default at least 96.
    """
    if not pairs:
        raise ValueError("no pairs to draw")
    h = pairs[0][0].shape[0]
    cell = cell or h * max(1, -(-96 // h))
    gap, label_h = 6, 16
    cols = min(columns, len(pairs))
    rows = -(-len(pairs) // cols)
    pair_w = 2 * cell + 2
    canvas = Image.new("RGB", (cols * (pair_w + gap) - gap, rows * (cell + label_h + gap) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (fake, real, label) in enumerate(pairs):
        r, c = divmod(i, cols)
        x, y = c * (pair_w + gap), r * (cell + label_h + gap)
        for j, image in enumerate((fake, real)):
            canvas.paste(Image.fromarray(np.asarray(image)).resize((cell, cell), Image.NEAREST), (x + j * (cell + 2), y))
        draw.text((x + 2, y + cell + 2), label, fill="black")
    return canvas
