"""data_prep: image collections -> training-ready uint8 datasets, and the Dataset that reads them.

    from data_prep import prepare, open_dataset
    path = prepare("photos/", "data/photos-256", resolution=256)   # or: python -m data_prep ...
    dataset = open_dataset(path, 64, xflip=True)                    # uint8 [C, 64, 64] items (C = 3 unless --channels)

The torch-dependent names (`ImageDataset`, `open_dataset`) load on first use, so the CLI and the
worker processes of `prepare` never pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import REASONS, DataPrepError, OutputExists
from .builtin import builtin_openmoji, builtin_openmoji_for_processes
from .pipeline import prepare

if TYPE_CHECKING:
    from .dataset import ImageDataset, open_dataset, read_manifest

__all__ = ["prepare", "builtin_openmoji", "builtin_openmoji_for_processes", "ImageDataset", "open_dataset",
           "read_manifest", "DataPrepError", "OutputExists", "REASONS"]


def __getattr__(name: str):
    if name in ("ImageDataset", "open_dataset", "read_manifest"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")
