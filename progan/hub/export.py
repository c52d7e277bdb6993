"""Exported generators: ``model.safetensors`` (weights + config in the header) and ``config.json``.

No pickle anywhere: safetensors stores raw tensors and a string->string header. The header holds
``format`` ("gan-studio"), ``format_version``, ``family``, ``config`` (JSON of the model config) and
``summary`` (JSON: preset, images seen, training time, ... whatever the exporter knew). Loading is
strict: a wrong family, missing/extra keys, wrong shapes, or a truncated/foreign file raise
``PretrainedError`` with one line that names the file and the problem.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors
from torch import nn

from ..config import config_from_dict, config_to_dict

__all__ = [
    "FORMAT",
    "read_safetensors",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "PretrainedError",
    "PretrainedMixin",
    "save_pretrained",
    "read_pretrained",
    "read_metadata",
    "atomic_write_bytes",
]

FORMAT = "gan-studio"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class PretrainedError(ValueError):
    """A weights file that cannot be loaded as the requested generator."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; exported files are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pretrained(generator: nn.Module, directory: str | os.PathLike, *, summary: dict[str, Any] | None = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json``; returns the weights path."""
    directory = Path(directory)
    config = generator.config
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "family": config.family,
        "config": json.dumps(config_to_dict(config), sort_keys=True),
        "summary": json.dumps(summary or {}, sort_keys=True, default=str),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS_NAME, save_safetensors(tensors, metadata=header))
    readable = {"family": config.family, "format_version": FORMAT_VERSION,
                "config": config_to_dict(config), "summary": summary or {}}
    atomic_write_bytes(directory / CONFIG_NAME, (json.dumps(readable, indent=2, default=str) + "\n").encode())
    return directory / WEIGHTS_NAME


def _weights_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise PretrainedError(f"{path}: no such weights file")
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and validate the header: returns ``{"family", "config" (dict), "summary" (dict), ...}``."""
    path = _weights_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise PretrainedError(f"{path}: not a valid safetensors file (truncated or corrupt?): {exc}") from None
    if header.get("format") != FORMAT:
        raise PretrainedError(f"{path}: not a {FORMAT} generator (header has no format={FORMAT!r})")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise PretrainedError(f"{path}: unsupported format_version {header.get('format_version')!r}")
    try:
        return {"family": header["family"], "config": json.loads(header["config"]),
                "summary": json.loads(header.get("summary", "{}")), "path": str(path)}
    except (KeyError, json.JSONDecodeError) as exc:
        raise PretrainedError(f"{path}: damaged header ({exc})") from None


def read_safetensors(path: str | os.PathLike, *, what: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(header metadata, every tensor)`` of a small safetensors file of ours (a projection, directions);
    a file that is not safetensors, or cannot be read, raises ValueError ``"{path}: not a {what} (...)"``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}, {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a {what} ({str(exc).splitlines()[0]})") from None


def read_pretrained(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Return ``(metadata, tensors)``; every tensor is read, so truncation is always detected."""
    path = _weights_file(path)
    meta = read_metadata(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise PretrainedError(f"{path}: not a valid safetensors file (truncated or corrupt?): {exc}") from None
    return meta, tensors


def load_state_strict(module: nn.Module, tensors: dict[str, torch.Tensor], *, source: str) -> None:
    """Like ``load_state_dict(strict=True)`` but with one readable line per kind of mismatch."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        raise PretrainedError(f"{source}: weights do not match the config: {'; '.join(parts)}")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise PretrainedError(f"{source}: {key} has shape {tuple(value.shape)}, "
                                  f"the config needs {tuple(expected[key].shape)}")
    module.load_state_dict(tensors, strict=True)


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a generator class with a ``config_cls`` attribute."""

    config_cls: type

    def save_pretrained(self, directory: str | os.PathLike, *, summary: dict[str, Any] | None = None) -> Path:
        return save_pretrained(self, directory, summary=summary)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, sha256: str | None = None,
                        device: str | torch.device = "cpu", **resolve_options: Any):
        """Load from a directory, a ``.safetensors`` file, an http(s) URL or ``hf://org/repo[/file]``."""
        from .download import resolve_weights  # deferred: downloading pulls in urllib/huggingface_hub

        path = resolve_weights(source, sha256=sha256, **resolve_options)
        meta, tensors = read_pretrained(path)
        family = cls.config_cls.family
        if meta["family"] != family:
            raise PretrainedError(f"{path}: holds a {meta['family']!r} generator, not {family!r}")
        try:
            config = config_from_dict(cls.config_cls, meta["config"])
        except (TypeError, ValueError) as exc:
            raise PretrainedError(f"{path}: invalid config: {exc}") from None
        model = cls(config)
        load_state_strict(model, tensors, source=str(path))
        model.pretrained_metadata = meta
        return model.to(device).eval().requires_grad_(False)


def truncate_to_resolution(generator: nn.Module, resolution: int) -> nn.Module:
    """A generator of the same family whose output is ``resolution``: the blocks a progressive run
    has trained so far. Channel counts depend only on the resolution, so the kept weights fit as-is."""
    import dataclasses

    config = dataclasses.replace(generator.config, resolution=resolution)
    smaller = type(generator)(config)
    source = generator.state_dict()
    wanted = smaller.state_dict()
    for key, value in wanted.items():
        if key not in source or source[key].shape != value.shape:
            raise PretrainedError(f"cannot truncate: {key} has no matching weight at {resolution}px")
    smaller.load_state_dict({k: source[k] for k in wanted}, strict=True)
    return smaller.to(next(generator.parameters()).device).eval().requires_grad_(False)
