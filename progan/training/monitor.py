"""Cheap health signals of a training run, logged at every sample step.

- **Diversity (the collapse signal).** The mean pairwise L2 distance between ``N`` generated images
  from fixed latents, divided by the same statistic for ``N`` fixed training reals at the same
  resolution. Both are measured in **8x8 RGB** (area-downsampled pixels in [-1, 1], 192 numbers per
  image). Why that space: it costs one tiny forward of G and no extra network; it does not move
  during training (D's features do, so a ratio in them would drift with D, not with G); and the
  collapse seen in this project's campaign was a collapse of layout and colour (every sample one
  rounded blob), which 8x8 keeps while it ignores the fine texture that even a healthy 4 px stage
  lacks. A healthy generator sits near 1; a collapsed one goes toward 0. It says nothing about
  quality, only spread: FID/recall do the rest.
- **r_v, ADA's overfitting heuristic** (Karras et al. 2020, "Training Generative Adversarial
  Networks with Limited Data", section 2, eq. 1): ``r_v = (E[D_train] - E[D_validation]) /
  (E[D_train] - E[D_generated])`` over a set of reals held out of training (``--holdout N``).
  0: D scores unseen reals like the reals it trains on; 1: it scores them like fakes (D has
  memorised its training set). D is called without augmentation here: the signal is about what D
  learned, not about the pipeline.

Everything runs under ``torch.no_grad`` with StyleGAN's noise constant and with the global RNG
forked, so taking the signals never changes the training run (resume stays bit-exact).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .data_stream import to_float_images
from .step import fade_reals

__all__ = ["DIVERSITY_RESOLUTION", "layout_diversity", "overfitting_ratio", "HeldOutSplit", "TrainingMonitor"]

DIVERSITY_RESOLUTION = 8  # the feature space of the collapse signal: 8x8 RGB


def layout_diversity(images: torch.Tensor) -> float:
    """Mean pairwise L2 distance of ``images [N, C, H, W]`` (N >= 2) in 8x8 RGB."""
    if images.shape[0] < 2:
        raise ValueError("diversity needs at least 2 images")
    small = F.adaptive_avg_pool2d(images.float(), DIVERSITY_RESOLUTION).flatten(1)  # [N, C*8*8]
    return float(torch.pdist(small).mean())


def overfitting_ratio(train_scores: torch.Tensor, val_scores: torch.Tensor, gen_scores: torch.Tensor) -> float:
    """ADA's r_v (section 2): ``(E[D_train] - E[D_val]) / (E[D_train] - E[D_gen])``; NaN if D cannot
    tell training reals from fakes at all (the denominator is 0)."""
    train, val, gen = (float(s.float().mean()) for s in (train_scores, val_scores, gen_scores))
    denominator = train - gen
    return (train - val) / denominator if denominator != 0 else math.nan


class HeldOutSplit:
    """A seeded random split of a dataset's ``num_images`` base images into training and held-out.

    With x-flip (``len(dataset) == 2 * num_images``) a held-out image's mirror is held out too, so
    D never trains on any view of a held-out image."""

    def __init__(self, num_images: int, holdout: int, *, seed: int) -> None:
        if not 0 <= holdout < num_images:
            raise ValueError(f"--holdout must be in [0, {num_images - 1}] for a dataset of {num_images} images, "
                             f"got {holdout}")
        perm = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 7 + 5))
        self.num_images = num_images
        self.heldout = sorted(perm[:holdout].tolist())
        self.train = sorted(perm[holdout:].tolist())

    def training_subset(self, dataset: Dataset) -> Dataset:
        return _Subset(dataset, self.train, self.num_images)


class _Subset(Dataset):
    def __init__(self, dataset: Dataset, indices: list[int], num_images: int) -> None:
        flips = len(dataset) == 2 * num_images  # type: ignore[arg-type]
        self.dataset = dataset
        self.indices = indices + ([i + num_images for i in indices] if flips else [])
        self.num_images, self.resolution = len(indices), getattr(dataset, "resolution", None)
        # what the metrics read of a dataset: its channels and, labelled (--cond), its classes
        for name in ("channels", "class_names"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))
        if getattr(dataset, "labels", None) is not None:
            self.labels = dataset.labels[indices]  # base images' classes (a mirror has its image's)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]


class TrainingMonitor:
    """Diversity and (with held-out reals) r_v of a run; ``num`` fixed latents and reals."""

    def __init__(self, *, latent_dim: int, num: int, seed: int, train_indices: list[int],
                 heldout_indices: list[int]) -> None:
        if num < 2:
            raise ValueError(f"--monitor-num must be >= 2 (or 0 to turn the signals off), got {num}")
        generator = torch.Generator().manual_seed(seed * 1000 + 77)
        self.z = torch.randn(num, latent_dim, generator=generator)                           # [num, latent_dim]
        pick = torch.randperm(len(train_indices), generator=generator)[:num].tolist()
        self.real_indices = [train_indices[i] for i in pick]
        self.heldout_indices = heldout_indices[:num]

    def _reals(self, dataset: Dataset, indices: list[int], alpha: float,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(reals [n, C, R, R] in [-1, 1], their labels [n] from a labelled dataset, else None)."""
        items = [dataset[i] for i in indices]
        labels = None
        if isinstance(items[0], (tuple, list)):  # a conditional run's dataset yields (image, class)
            labels = torch.stack([torch.as_tensor(label) for _, label in items]).long().to(device)
            items = [image for image, _ in items]
        batch = torch.stack(items)                                                          # [n, C, R, R] uint8
        return fade_reals(to_float_images(batch, device), alpha), labels

    @torch.no_grad()
    def __call__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, dataset: Dataset, *,
                 stage: int, alpha: float, device: torch.device) -> dict[str, float]:
        """``dataset`` is the *full* dataset at the current resolution (indices are into it)."""
        with torch.random.fork_rng(devices=[]):
            kwargs: dict[str, Any] = {"stage": stage, "alpha": alpha}
            if hasattr(generator, "synthesis"):
                kwargs["noise_mode"] = "const"
            reals, real_labels = self._reals(dataset, self.real_indices, alpha, device)
            fake_labels = None
            if real_labels is not None:  # conditional: the fakes take the fixed reals' classes, cycled
                fake_labels = real_labels[torch.arange(len(self.z), device=device) % len(real_labels)]
                kwargs["labels"] = fake_labels
            fakes = generator(self.z.to(device), **kwargs).float()                          # [num, C, R, R]
            signals = {"diversity": layout_diversity(fakes) / max(layout_diversity(reals), 1e-12)}
            if self.heldout_indices:
                held, held_labels = self._reals(dataset, self.heldout_indices, alpha, device)
                scores = [discriminator(x, stage=stage, alpha=alpha,
                                        **({} if y is None else {"labels": y})).float()
                          for x, y in ((reals, real_labels), (held, held_labels), (fakes, fake_labels))]
                signals["r_v"] = overfitting_ratio(*scores)
                signals.update(d_train=float(scores[0].mean()), d_val=float(scores[1].mean()),
                               d_gen=float(scores[2].mean()))
        return signals
