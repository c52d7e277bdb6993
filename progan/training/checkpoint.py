"""Training checkpoints: complete, atomic, and loaded without unpickling code.

Layout: ``OUT/checkpoints/ckpt-000012.000/`` holds ``state.pt`` (models, optimizers, scaler, schedule
position, fixed sample latents) and one ``rng-rankN.pt`` per process. Every process writes into
``.tmp-ckpt-...``; the main process renames the directory only after all files are fsynced, so a
crash leaves either the previous checkpoint or the new one, never half of one. Files are plain
``torch.save`` dicts of tensors and numbers, read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["checkpoint_name", "list_checkpoints", "latest_checkpoint", "save_checkpoint", "load_checkpoint"]

_PATTERN = re.compile(r"^ckpt-(\d+\.\d{3})$")


def checkpoint_name(images_seen: int) -> str:
    return f"ckpt-{images_seen / 1000:010.3f}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _PATTERN.match(p.name) and (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: float(_PATTERN.match(p.name).group(1)))


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def _save_synced(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    root: Path,
    *,
    images_seen: int,
    state: dict[str, Any] | None,
    rank_state: dict[str, Any],
    rank: int,
    barrier: Callable[[], None],
    keep: int,
) -> Path:
    """Collective: every rank calls this; ``state`` is only needed on rank 0."""
    name = checkpoint_name(images_seen)
    final, tmp = root / name, root / f".tmp-{name}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    _save_synced(rank_state, tmp / f"rng-rank{rank}.pt")
    barrier()
    if rank == 0:
        assert state is not None
        _save_synced(state, tmp / "state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def load_checkpoint(path: Path, *, rank: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Returns ``(state, rank_state)``; ``rank_state`` is None if this rank did not exist when saved."""
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    rank_file = path / f"rng-rank{rank}.pt"
    rank_state = torch.load(rank_file, map_location="cpu", weights_only=True) if rank_file.exists() else None
    return state, rank_state
