"""Per-class FID/KID of a class-conditional generator (``evaluate.py --per-class``).

Class k is scored like a dataset of its own: ``num`` generated samples, all of class k (sample i uses
latent i, as in ``evaluation.evaluate_generator``), against the dataset's images labelled k (a seeded
random ``num_real`` of them when there are more). FID (Heusel et al. 2017, section 3) and KID
(Binkowski et al. 2018, section 3) are then those of the class-conditional distributions
p(x | y = k) and p_G(x | y = k), the "intra-class FID" of Miyato & Koyama 2018 (section 5.1). Real
statistics are cached per class (the dataset key plus the class name).

A class with fewer than 2 images cannot have a covariance and is reported as skipped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .evaluation import evaluate_generator
from .features import FeatureNetwork

__all__ = ["ClassSubset", "class_subset", "evaluate_per_class"]


class ClassSubset(Dataset):
    """The images of ``dataset`` labelled ``label`` (x-flip mirrors included), items passed through
    unchanged; carries the ``channels`` and ``resolution`` the metrics read, and labels all ``label``."""

    def __init__(self, dataset: Dataset, label: int) -> None:
        labels = np.asarray(dataset.labels)
        base = np.flatnonzero(labels == label).tolist()
        num_images = getattr(dataset, "num_images", len(labels))
        flips = len(dataset) == 2 * num_images  # type: ignore[arg-type]
        self.dataset, self.label = dataset, int(label)
        self.indices = base + ([i + num_images for i in base] if flips else [])
        self.num_images = len(base)
        self.labels = np.full(len(base), label, dtype=np.int64)
        self.class_names = dataset.class_names
        for name in ("channels", "resolution"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def extra_repr(self) -> str:
        return f"class {self.label} ({self.class_names[self.label]!r}), images={self.num_images}"


def class_subset(dataset: Dataset, label: int) -> ClassSubset:
    """``ClassSubset`` of a labelled dataset; one-line ValueError without labels or for a bad label."""
    if getattr(dataset, "labels", None) is None:
        raise ValueError("per-class metrics need a dataset with class labels (python -m data_prep ... --labels)")
    if not 0 <= label < len(dataset.class_names):
        raise ValueError(f"class index must be in [0, {len(dataset.class_names)}), got {label}")
    return ClassSubset(dataset, label)


def evaluate_per_class(
    generator: torch.nn.Module,
    dataset: Dataset,
    network: FeatureNetwork,
    *,
    accelerator: Any,
    num: int,
    dataset_key: str,
    num_real: int | None = None,
    metrics: tuple[str, ...] = ("fid", "kid"),
    generator_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, dict[str, Any]] | None:
    """``{class name: {"num_real", metric: value, ...} or {"num_real", "skipped": reason}}`` on the main
    process (None on the others). ``num_real`` caps each class's reals (default: all of them);
    ``options`` go to ``evaluate_generator`` (cache_dir, batch_size, seed, background, progress)."""
    names = tuple(getattr(generator.config, "class_names", ()) or ())
    if not names:
        raise ValueError("--per-class needs a class-conditional generator")
    if tuple(getattr(dataset, "class_names", ()) or ()) != names:
        raise ValueError(f"the dataset's classes {list(getattr(dataset, 'class_names', ()) or ())} are not the "
                         f"generator's {list(names)}")
    out: dict[str, dict[str, Any]] = {}
    for label, name in enumerate(names):
        subset = class_subset(dataset, label)
        reals = len(subset) if num_real is None else min(num_real, len(subset))
        if reals < 2:
            out[name] = {"num_real": reals, "skipped": "fewer than 2 real images"}
            continue
        results = evaluate_generator(generator, subset, network, accelerator=accelerator, num=num, num_real=reals,
                                     dataset_key=f"{dataset_key}|class {label} {name}", metrics=metrics,
                                     generator_kwargs=generator_kwargs,
                                     labels=torch.full((num,), label, dtype=torch.long), **options)
        if results is not None:
            out[name] = {"num_real": reals, **{k: float(v) for k, v in results.items()}}
    return out if accelerator.is_main_process else None
