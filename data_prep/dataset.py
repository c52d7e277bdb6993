"""The torch Dataset train.py reads: uint8 [C, R, R] tensors from a prepared dataset or a folder.

C is the dataset's ``channels`` (3 RGB; 1 grayscale or 4 RGBA when prepared with ``--channels``;
a manifest without the field is RGB). A plain folder is read as RGB.

A prepared directory is read through numpy memory maps opened lazily, on first access in each
process: nothing is held open across fork/spawn, every DataLoader worker and every rank on every
node maps the same read-only files, and the OS page cache shares them. Pixels stay uint8 all the
way to the device, where the training step converts to float (4x less host memory and PCIe).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataPrepError, SkipImage
from .resize import is_power_of_two
from .writer import FORMAT_VERSION


def read_manifest(path: str | os.PathLike) -> dict:
    """Load and check `<path>/manifest.json`; one clear error if it is not our format."""
    file = Path(path) / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataPrepError(f"cannot read dataset manifest {file}: {error}") from None
    if (manifest.get("format"), manifest.get("format_version")) != ("gan-studio-dataset",
                                                                     FORMAT_VERSION):
        raise DataPrepError(f"{file} is not a gan-studio dataset "
                            f"of format version {FORMAT_VERSION}")
    return manifest


def _read_labels(path: Path, manifest: dict, length: int) -> tuple[tuple[str, ...], np.ndarray | None]:
    """Class names and the int64 [N] class index per image, or ((), None) for an unlabelled dataset."""
    entry = manifest.get("files", {}).get("labels")
    if entry is None:
        return (), None
    names = tuple(manifest.get("classes", {}).get("names", ()))
    try:
        labels = np.load(path / entry["file"])
    except (OSError, ValueError) as error:
        raise DataPrepError(f"cannot read labels {path / entry['file']}: {error}") from None
    if labels.shape != (length,) or labels.dtype != np.int64 or (length and not
                                                                (0 <= labels.min() and labels.max() < len(names))):
        raise DataPrepError(f"{path / entry['file']} does not hold {length} class indices below "
                            f"{len(names)}: the dataset is damaged")
    return names, labels


class _Prepared:
    """Random access into images_<R>.npy; the memmap is opened per process on first use."""

    def __init__(self, path: Path, resolution: int) -> None:
        self.manifest = read_manifest(path)
        self.resolutions = tuple(self.manifest["resolutions"])
        if resolution not in self.resolutions:
            raise DataPrepError(f"resolution {resolution} not in dataset {path}; "
                                f"available: {sorted(self.resolutions)}")
        entry = self.manifest["files"][str(resolution)]
        self.file = path / entry["file"]
        self.shape = tuple(entry["shape"])  # [N, C, R, R]
        self.length = self.shape[0]
        self.channels = int(self.manifest.get("channels", 3))
        if self.shape[1] != self.channels:
            raise DataPrepError(f"{self.file}: the manifest says {self.channels} channels but shape {self.shape}")
        self._array: np.ndarray | None = None
        self._pid: int | None = None
        self.class_names, self.labels = _read_labels(path, self.manifest, self.length)

    def __len__(self) -> int:
        return self.length

    def array(self) -> np.ndarray:
        # Re-open after fork: a mapping inherited from the parent works, but reopening per pid
        # keeps file handles and readahead state private to each worker.
        if self._array is None or self._pid != os.getpid():
            try:
                array = np.load(self.file, mmap_mode="r")
            except (OSError, ValueError) as error:
                raise DataPrepError(f"cannot open {self.file}: {error}") from None
            if array.shape != self.shape or array.dtype != np.uint8:
                raise DataPrepError(f"{self.file} holds {array.dtype} {array.shape}, the manifest "
                                    f"says uint8 {self.shape}: the dataset is damaged")
            self._array, self._pid = array, os.getpid()
        return self._array  # [N, C, R, R] uint8

    def load(self, index: int, *, flip: bool = False) -> np.ndarray:
        image = self.array()[index]  # [C, R, R], a view into the page cache
        # np.array always copies into a private, writable, contiguous array (mirrored or not).
        return np.array(image[:, :, ::-1] if flip else image, order="C")

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None, "_pid": None}  # never pickle a mapping


class _Folder:
    """Unprepared folder: decode + crop + resize on the fly with the same code as prepare()."""

    def __init__(self, path: Path, resolution: int, **options) -> None:
        from .pipeline import Settings
        from .sources import open_source

        source = open_source(path)
        self.items = list(source.items)
        if not self.items:
            raise DataPrepError(f"no images found in {path}")
        self.settings = Settings(resolution, pyramid=False, **options)
        self.resolutions = (resolution,)
        self.class_names, self.labels = (), None  # labels need data_prep --labels
        self.channels = 3
        self.manifest = {"format": "raw-folder",
                         "source": {"kind": "folder", "location": str(path)},
                         "resolutions": [resolution], "counts": {"found": len(self.items)}}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int, *, flip: bool = False) -> np.ndarray:
        from .pipeline import load_square

        # A bad file cannot be dropped from the index any more, so the next good one stands in
        # (deterministically); prepare() the folder to get a clean, listed set of skips.
        for offset in range(len(self.items)):
            item = self.items[(index + offset) % len(self.items)]
            try:
                image = load_square(item, self.settings).transpose(2, 0, 1)  # [3, R, R]
                return np.array(image[:, :, ::-1] if flip else image, order="C")
            except SkipImage as skip:
                warnings.warn(f"skipping {item.name}: {skip}", stacklevel=2)
        raise RuntimeError("no decodable image in the folder")


class ImageDataset(Dataset):
    """uint8 images at one resolution from a prepared dataset directory or a plain folder.

    Args:
        path: a directory written by `prepare()` (has manifest.json) or a folder of images.
        resolution: one of `self.resolutions` for a prepared dataset; any power of two >= 4
            for a folder.
        xflip: also return each image mirrored left-right: indices N..2N-1 are the mirrors of
            0..N-1, so the length doubles and samplers/resume stay deterministic.
        crop, background, upscale: decode options for a plain folder (see `prepare`).
        with_labels: items are `(image, class index)` pairs (int64 scalar tensor; a mirror keeps its
            image's class); refused for a dataset prepared without `--labels`.

    `ds[i]` is a contiguous uint8 tensor [C, R, R] (``self.channels``); convert on the device:
    `x = batch.to(device).float() / 127.5 - 1`. `class_names` (empty without labels) and
    `labels` (int64 [num_images] or None) describe the classes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int,
        *,
        xflip: bool = False,
        crop: str = "center",
        background: tuple[int, int, int] = (255, 255, 255),
        upscale: bool = False,
        with_labels: bool = False,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise DataPrepError(f"dataset not found: {path}")
        if not is_power_of_two(resolution):
            raise DataPrepError(f"resolution must be a power of two >= 4, got {resolution}")
        self.resolution = resolution
        self.xflip = xflip
        if (self.path / "manifest.json").exists():
            self._backend = _Prepared(self.path, resolution)
        else:
            self._backend = _Folder(self.path, resolution, crop=crop,
                                    background=tuple(background), upscale=upscale)
        self.resolutions: tuple[int, ...] = self._backend.resolutions
        self.channels: int = self._backend.channels  # 1, 3 or 4
        self.manifest: dict = self._backend.manifest
        self.num_images = len(self._backend)
        self.class_names: tuple[str, ...] = self._backend.class_names
        self.labels: np.ndarray | None = self._backend.labels
        if with_labels and self.labels is None:
            raise DataPrepError(f"dataset {path} has no class labels; prepare it with "
                                "python -m data_prep SOURCE --labels folders|FILE.csv|FILE.json")
        self.with_labels = with_labels

    def class_counts(self) -> list[int]:
        """Images per class (mirrors not counted twice: the distribution is the same)."""
        if self.labels is None:
            return []
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        image = self._backend.load(index % self.num_images, flip=index >= self.num_images)
        if self.with_labels:
            return torch.from_numpy(image), torch.tensor(int(self.labels[index % self.num_images]))
        return torch.from_numpy(image)  # [C, R, R] uint8, contiguous

    def extra_repr(self) -> str:
        return (f"{self.path}, resolution={self.resolution}, channels={self.channels}, images={self.num_images}, "
                f"xflip={self.xflip}, classes={len(self.class_names)}")

    def __repr__(self) -> str:
        return f"ImageDataset({self.extra_repr()})"


def open_dataset(path: str | os.PathLike, resolution: int, *, xflip: bool = False,
                 with_labels: bool = False) -> ImageDataset:
    """The Dataset for `path`, prepared directory or plain folder alike (see ImageDataset)."""
    return ImageDataset(path, resolution, xflip=xflip, with_labels=with_labels)
