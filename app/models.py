"""Which generators the app serves: the bundled weights or ``--weights`` sources, loaded lazily.

The store maps a short label to a source the *operator* chose at launch (path, URL, ``hf://``).
Visitors pick among those labels; they can add a source only when the operator started the app
with ``--allow-remote-weights``, and then only ``http(s)://`` or ``hf://``, never a local path, so a
visitor cannot make the server read its files. Loaded generators stay in a small LRU cache; every
load error is a ``ValueError``/``OSError`` with one line (``progan.hub.export`` / ``progan.hub``), which
the UI shows while the old model keeps serving.

Concurrency: the store's lock guards only its dictionaries, never a load. A load (a file read, or a
download that may take minutes) runs outside it, so every other event, cached models included,
goes on meanwhile. Loads of the same label are deduplicated: the first caller loads, later callers
wait on its ``Future`` and get the same generator (or the same error); a failed load is not cached,
so the next request tries again.
"""
from __future__ import annotations

import json
import re
import sys
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from families import load_generator

from .limits import DEFAULT_LIMITS, Limits

__all__ = ["REPO_ROOT", "BUNDLED", "LOAD_ERRORS", "launch_sources", "ModelStore", "describe_model"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# label -> directory; the first one present is the default model
BUNDLED: dict[str, Path] = {
    "stylegan_lite-openmoji": REPO_ROOT / "weights" / "stylegan_lite-openmoji",
    "progan-openmoji": REPO_ROOT / "weights" / "progan-openmoji",
}
LOAD_ERRORS = (ValueError, OSError)  # PretrainedError, ChecksumMismatchError are ValueErrors; hub errors OSErrors
_REMOTE = re.compile(r"^(https?|hf)://", re.IGNORECASE)


def _label_for(source: str) -> str:
    text = source.rstrip("/")
    if _REMOTE.match(text):
        return text  # a URL is its own clearest name
    path = Path(text)
    return path.parent.name if path.suffix == ".safetensors" and path.stem == "model" else path.stem or text


def launch_sources(weights: Sequence[str] | None) -> dict[str, str]:
    """``label -> source`` for the sources given at launch, or the bundled weights that exist.

    Raises ``FileNotFoundError`` (one line) when no weights were given and none are bundled.
    """
    if weights:
        sources: dict[str, str] = {}
        for source in weights:
            label, n = _label_for(source), 2
            while label in sources:  # two runs both called "model": keep both, tell them apart
                label, n = f"{_label_for(source)} ({n})", n + 1
            sources[label] = source
        return sources
    present = {label: str(path) for label, path in BUNDLED.items() if (path / "model.safetensors").is_file()}
    if not present:
        names = " and ".join(str(p.relative_to(REPO_ROOT)) for p in BUNDLED.values())
        raise FileNotFoundError(f"no bundled weights found ({names} are missing); "
                                f"pass --weights PATH|URL|hf://org/repo")
    for label, path in BUNDLED.items():
        if label not in present:
            print(f"note: bundled weights {path.relative_to(REPO_ROOT)} are missing; not offered", file=sys.stderr)
    return present


class ModelStore:
    """Thread-safe ``label -> generator`` with lazy loading and an LRU of at most ``cache_size`` models."""

    def __init__(self, sources: dict[str, str], *, device: str | torch.device = "cpu", allow_remote: bool = False,
                 limits: Limits = DEFAULT_LIMITS, cache_size: int = 4, max_remote: int = 16) -> None:
        if not sources:
            raise ValueError("ModelStore needs at least one weights source")
        self.sources = dict(sources)
        self.launch_labels = tuple(sources)
        self.device = torch.device(device)
        self.allow_remote = allow_remote
        self.limits = limits
        self.cache_size = cache_size
        self.max_remote = max_remote
        self._loaded: OrderedDict[str, nn.Module] = OrderedDict()
        self._loading: dict[str, Future] = {}  # label -> the load in flight, which later callers wait on
        self._lock = threading.Lock()          # guards sources, _loaded and _loading; held for no I/O

    @property
    def labels(self) -> list[str]:
        with self._lock:
            return list(self.sources)

    @property
    def default(self) -> str:
        return self.launch_labels[0]

    def get(self, label: str) -> nn.Module:
        """The generator for ``label``, loading it on first use. Raises ValueError/OSError (one line)."""
        with self._lock:
            if label not in self.sources:
                raise ValueError(f"unknown model {label!r}; choose from {', '.join(self.sources)}")
            if label in self._loaded:
                self._loaded.move_to_end(label)
                return self._loaded[label]
            pending = self._loading.get(label)
            if pending is None:  # this caller loads; others asking for the label meanwhile wait on it
                pending = self._loading[label] = Future()
                source = self.sources[label]
                owner = True
            else:
                owner = False
        if not owner:
            return pending.result()  # the loader's generator, or its error raised here too
        try:
            generator = self._load(label, source)
        except BaseException as exc:
            with self._lock:
                del self._loading[label]  # not cached: the next request tries again
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[label]
            if label in self.sources:  # add_remote may have dropped it from the list meanwhile
                self._loaded[label] = generator
                while len(self._loaded) > self.cache_size:
                    self._loaded.popitem(last=False)
        pending.set_result(generator)
        return generator

    def _load(self, label: str, source: str) -> nn.Module:
        """Read or download ``source``: the slow part, run without the lock."""
        generator = load_generator(source, device=self.device, progress=False)
        resolution = generator.config.resolution
        if resolution > self.limits.max_resolution:
            raise ValueError(f"{label}: {resolution}x{resolution} is above this server's limit of "
                             f"{self.limits.max_resolution} px")
        return generator

    def add_remote(self, source: str) -> str:
        """Register and load a visitor's ``http(s)://`` or ``hf://`` source; returns its label."""
        if not self.allow_remote:
            raise ValueError("this server does not load weights from URLs (start it with --allow-remote-weights)")
        source = (source or "").strip()
        if not _REMOTE.match(source):
            raise ValueError("give an http(s):// URL or hf://org/repo[/file]; local paths are not accepted")
        label = _label_for(source)
        with self._lock:
            new = label not in self.sources
            self.sources[label] = source
        try:
            self.get(label)
        except BaseException:
            with self._lock:
                if new and label not in self._loaded and label not in self._loading:
                    self.sources.pop(label, None)  # a failed load leaves no dead entry in the switcher
            raise
        with self._lock:
            remote = [lb for lb in self.sources if lb not in self.launch_labels]
            for old in remote[:-self.max_remote]:  # bound the list a visitor can grow
                del self.sources[old]
                self._loaded.pop(old, None)
        return label


def _display_path(source: str) -> str:
    if _REMOTE.match(source):
        return source
    try:
        return str(Path(source).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return source


def describe_model(label: str, source: str, generator: nn.Module) -> tuple[str, dict[str, Any]]:
    """Markdown (family, resolution, source, training summary) and the config dict for the Model tab."""
    config = generator.config
    meta = getattr(generator, "pretrained_metadata", {}) or {}
    family = {"progan": "ProGAN", "stylegan_lite": "StyleGAN-lite"}.get(config.family, config.family)
    params = sum(p.numel() for p in generator.parameters())
    lines = [f"### {label}", "", "| | |", "|---|---|",
             f"| family | {family} |", f"| resolution | {config.resolution}×{config.resolution} |",
             f"| latent size | {config.latent_dim} |", f"| parameters | {params / 1e6:.2f}M |",
             f"| weights | `{_display_path(source)}` |", f"| device | {_device_of(generator)} |"]
    if config.family == "stylegan_lite":
        lines.insert(7, f"| style layers (ws) | {config.num_ws} |")
    summary = meta.get("summary") or {}
    lines += ["", "#### Training summary", ""]
    if summary:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in summary.items()]
    else:
        lines.append("No training summary in this file (randomly initialised or exported without one).")
    return "\n".join(lines), dict(meta.get("config") or {"family": config.family})


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _device_of(generator: nn.Module) -> str:
    return str(next(generator.parameters()).device)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"

