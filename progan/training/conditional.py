"""What a class-conditional run (``--cond``) takes from its dataset: class names and counts.

The model config of a conditional run is the preset plus the dataset's ``class_names``
(``progan.conditioning``); the counts are the label distribution that G-step fakes are drawn from
(``step.sample_labels``). Sample grids cycle through the classes so every grid shows all of them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["conditional_model_config", "grid_labels"]


def conditional_model_config(model_config: Any, dataset: Dataset) -> tuple[Any, list[int]]:
    """(the preset with the dataset's class names, images per class); one-line error without labels."""
    names = tuple(getattr(dataset, "class_names", ()) or ())
    if not names:
        raise ValueError("--cond needs a dataset with class labels: prepare it with "
                         "python -m data_prep SOURCE --labels folders|FILE.csv|FILE.json")
    counts = list(dataset.class_counts())
    if len(counts) != len(names) or min(counts) < 1:
        raise ValueError(f"dataset class counts {counts} do not match its {len(names)} classes")
    return dataclasses.replace(model_config, class_names=names), counts


def grid_labels(count: int, num_classes: int) -> torch.Tensor:
    """Labels of the fixed sample grid: 0, 1, ..., K-1, 0, 1, ... (int64 [count])."""
    return torch.arange(count) % num_classes
