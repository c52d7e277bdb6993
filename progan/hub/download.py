"""Resolve a weights source to a local ``model.safetensors`` file.

``resolve_weights(source)`` always returns the path of a ``.safetensors`` *file*. Resolution order:

1. ``hf://org/repo[@revision][/path/in/repo]``: ``huggingface_hub.hf_hub_download`` fetches the
   file into the Hugging Face cache (``HF_HOME``; or ``<cache_dir>/huggingface`` when ``cache_dir``
   is given). A path ending in ``.safetensors`` names the file; any other path names a folder
   holding ``model.safetensors``; no path means ``model.safetensors`` at the repo root. A revision
   containing ``/`` is URL-encoded: ``@refs%2Fpr%2F3``. ``HF_HUB_OFFLINE=1`` is honoured by the Hub
   client itself.
2. ``http://`` / ``https://``: streamed with urllib into ``cache_dir`` (default
   ``$GAN_STUDIO_CACHE/weights``, else ``$XDG_CACHE_HOME/gan-studio/weights``, else
   ``~/.cache/gan-studio/weights``) under ``<sha256(url)>-<basename>``, so two URLs never share a
   cache file. A cached file is returned without any network access; with ``sha256`` given it must
   also match, else it is downloaded again.
3. Anything else is a local path: a file, or a directory holding ``model.safetensors``.

Downloads go to a hidden temp file in the cache directory, are fsynced, checked (byte count against
Content-Length, at most ``max_bytes`` -- 2 GiB by default, ten times our largest model -- safetensors
header, ``sha256``) and only then renamed into place with
``os.replace``. Any failure, Ctrl-C included, deletes the temp file, so the cache never holds a
partial or unverified file, and concurrent downloads of one URL cannot corrupt each other.

``GAN_STUDIO_OFFLINE=1`` forbids all network access: a cache miss raises ``WeightsNotFoundError``.
Nothing here is unpickled: the result is meant for ``safetensors`` loaders only.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import struct
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple

from tqdm.auto import tqdm

__all__ = [
    "ChecksumMismatchError", "DownloadError", "HfLocation", "WeightsNotFoundError",
    "cache_root", "default_cache_dir", "parse_hf_uri", "resolve_weights", "sha256_file",
]

WEIGHTS_NAME = "model.safetensors"
_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough for a smooth progress bar
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class WeightsNotFoundError(FileNotFoundError):
    """The weights are not at the local path, in the repo, or (offline) in the cache."""


class ChecksumMismatchError(ValueError):
    """A file's sha256 differs from the expected one."""


class DownloadError(OSError):
    """A download failed: HTTP error, unreachable host, dropped connection or truncated body."""


class HfLocation(NamedTuple):
    """A parsed ``hf://`` URI: the arguments for ``hf_hub_download``."""

    repo_id: str
    filename: str
    revision: str | None


MAX_DOWNLOAD_BYTES = 2 * 1024**3


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in chunks so large weights never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_root() -> Path:
    """``$GAN_STUDIO_CACHE``, else ``$XDG_CACHE_HOME/gan-studio``, else ``~/.cache/gan-studio``."""
    if root := os.environ.get("GAN_STUDIO_CACHE"):
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "gan-studio"


def default_cache_dir() -> Path:
    """Where URL downloads are cached when ``cache_dir`` is not given."""
    return cache_root() / "weights"


def parse_hf_uri(uri: str) -> HfLocation:
    """Split ``hf://org/repo[@revision][/path]`` into repo id, file name and revision."""
    if uri[:5].lower() != "hf://":
        raise ValueError(f"not an hf:// URI: {uri!r}")
    parts = uri[len("hf://"):].strip("/").split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"expected hf://org/repo[@revision][/path], got {uri!r}")
    name, _, revision = parts[1].partition("@")
    if not name or (revision == "" and "@" in parts[1]):
        raise ValueError(f"empty repo name or revision in {uri!r}")
    subpath = parts[2:]
    if any(p in ("", ".", "..") for p in subpath):
        raise ValueError(f"empty, '.' or '..' path segment in {uri!r}")
    if not subpath or not subpath[-1].endswith(".safetensors"):
        subpath.append(WEIGHTS_NAME)  # a folder inside the repo, like a local directory source
    return HfLocation(f"{parts[0]}/{name}", "/".join(subpath), urllib.parse.unquote(revision) or None)


def resolve_weights(
    source: str | os.PathLike,
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    progress: bool = True,
    timeout: float = 30.0,
    max_bytes: int | None = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Return a local path to the ``.safetensors`` file that ``source`` names (see module doc).

    ``sha256`` (hex) is checked for every kind of source. ``force_download`` ignores a cached copy.
    ``timeout`` (seconds) bounds connecting and each socket read, not the whole download.
    ``max_bytes`` caps an http(s) download (None: no cap), so a wrong or hostile URL cannot fill the disk.
    Raises ``WeightsNotFoundError``, ``ChecksumMismatchError`` or ``DownloadError``.
    """
    expected = _normalize_sha256(sha256)
    text = os.fspath(source)
    match = _SCHEME.match(text) if isinstance(source, str) else None  # a PathLike is always local
    scheme = match.group(1).lower() if match else ""
    if scheme not in ("", "hf", "http", "https"):
        raise ValueError(f"unsupported weights source scheme: {text!r} (use a path, http(s):// or hf://)")
    if scheme and force_download and _offline():
        raise DownloadError(f"GAN_STUDIO_OFFLINE=1 forbids force_download of {text}")
    if scheme == "hf":
        path = _resolve_hf(text, cache_dir=cache_dir, force_download=force_download, timeout=timeout)
    elif scheme:
        return _resolve_url(text, expected, Path(cache_dir) if cache_dir else default_cache_dir(),
                            force_download=force_download, progress=progress, timeout=timeout,
                            max_bytes=max_bytes)
    else:
        path = _resolve_local(Path(text).expanduser())
    if expected is not None and (got := sha256_file(path)) != expected:
        raise ChecksumMismatchError(f"sha256 mismatch for {path}: expected {expected}, got {got}")
    return path


def _normalize_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return value


def _offline() -> bool:
    return os.environ.get("GAN_STUDIO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _resolve_local(path: Path) -> Path:
    candidate = path / WEIGHTS_NAME if path.is_dir() else path
    if not candidate.is_file():
        raise WeightsNotFoundError(f"no weights at {candidate}")
    return candidate.resolve()


def _resolve_hf(uri: str, *, cache_dir: str | os.PathLike | None, force_download: bool,
                timeout: float) -> Path:
    location = parse_hf_uri(uri)
    # Imported here: only hf:// sources pay for the Hub client's import time.
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        return Path(hf_hub_download(
            repo_id=location.repo_id, filename=location.filename, revision=location.revision,
            cache_dir=Path(cache_dir) / "huggingface" if cache_dir else None,
            force_download=force_download, local_files_only=_offline(), etag_timeout=timeout,
        ))
    # LocalEntryNotFoundError first: it subclasses EntryNotFoundError but means "offline cache miss".
    except LocalEntryNotFoundError as exc:
        raise WeightsNotFoundError(f"{uri} is not in the local Hugging Face cache and the Hub "
                                   f"is offline or unreachable") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise WeightsNotFoundError(f"{uri} not found on the Hub: {type(exc).__name__}") from exc
    except Exception as exc:  # requests/httpx/Hub HTTP errors: one exception type for callers
        raise DownloadError(f"downloading {uri} failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _cache_name(url: str) -> str:
    base = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path)) or WEIGHTS_NAME
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base)[-100:].lstrip(".") or WEIGHTS_NAME
    return f"{hashlib.sha256(url.encode()).hexdigest()}-{base}"


def _resolve_url(url: str, expected: str | None, cache_dir: Path, *, force_download: bool,
                 progress: bool, timeout: float, max_bytes: int | None) -> Path:
    target = cache_dir / _cache_name(url)
    if not force_download and target.is_file():
        if expected is None or sha256_file(target) == expected:
            return target
    if _offline():
        state = "holds a file with the wrong sha256" if target.is_file() else "has no copy"
        raise WeightsNotFoundError(f"cache {cache_dir} {state} of {url} and "
                                   f"GAN_STUDIO_OFFLINE=1 forbids downloading")
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:  # owns fd from here on, so nothing can leak it
            os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; a shared GAN_STUDIO_CACHE must be readable
            got = _download(url, out, progress=progress, timeout=timeout, max_bytes=max_bytes)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the rename makes them visible
        _check_safetensors_header(Path(tmp_name), url)
        if expected is not None and got != expected:
            raise ChecksumMismatchError(f"sha256 mismatch for {url}: expected {expected}, got {got}")
        os.replace(tmp_name, target)
    except BaseException:  # KeyboardInterrupt too: never leave a partial file behind
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(cache_dir)
    return target


def _too_large(url: str, max_bytes: int) -> DownloadError:
    return DownloadError(f"{url} is larger than the {max_bytes:,}-byte download limit (max_bytes)")


def _download(url: str, out, *, progress: bool, timeout: float, max_bytes: int | None) -> str:
    """Stream ``url`` into ``out``; return the sha256 of the bytes written."""
    request = urllib.request.Request(url, headers={"User-Agent": "gan-studio"})
    digest, written = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if max_bytes is not None and total is not None and total > max_bytes:
                raise _too_large(url, max_bytes)
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=os.path.basename(urllib.parse.urlsplit(url).path) or url,
                      disable=not (progress and total), leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:  # no or a lying Content-Length
                        raise _too_large(url, max_bytes)
                    bar.update(len(chunk))
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot reach {url}: {exc.reason}") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, IncompleteRead
        raise DownloadError(f"download of {url} interrupted after {written} bytes: "
                            f"{type(exc).__name__}: {exc}") from exc
    # http.client returns a short body silently when the server closes early; catch it here.
    if total is not None and written != total:
        raise DownloadError(f"download of {url} truncated: got {written} of {total} bytes")
    return digest.hexdigest()


def _check_safetensors_header(path: Path, url: str) -> None:
    """Refuse to cache an HTML error page or other non-safetensors body served with HTTP 200."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if len(head) < 9 or not 0 < struct.unpack("<Q", head[:8])[0] <= size - 8 or head[8:9] != b"{":
        raise DownloadError(f"{url} did not return a safetensors file ({size} bytes)")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened/fsynced everywhere: best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
