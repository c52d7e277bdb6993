"""Where images come from: a folder (recursive), a .zip, a .tar(.gz/.bz2/.xz), or OpenMoji.

Every source yields `Item`s in a fixed order (sorted paths for folders and zips, archive order for
tars), which is what makes two runs over the same input produce the same bytes. Items are small
and picklable: folder and zip items carry only a location and the worker reads the bytes itself
(parallel I/O, random access); tar items carry their bytes because a compressed tar can only be
read front to back, once, in the main process.

Nothing is read whole without a bound: a file, a zip member or a tar member larger than ``max_bytes``
(default 256 MiB, far above any real image) is skipped with reason ``too_many_bytes``. The declared
size is checked first (file size, zip header, tar header), then at most ``max_bytes + 1`` bytes are
read, so a header that lies (a zip bomb) or a file that grows cannot get past the cap either.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Iterator

from .errors import DataPrepError, SkipImage
from .items import Item, Source

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .webp .tif .tiff .ppm .pgm .pbm .pnm".split()
)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
DEFAULT_MAX_BYTES = 256 << 20  # per file or archive member


def _too_many_bytes(size: int, max_bytes: int) -> str:
    return f"{size} bytes or more exceeds max_bytes={max_bytes}"


def _read_capped(handle, max_bytes: int) -> bytes:
    """At most ``max_bytes`` bytes from ``handle``; SkipImage("too_many_bytes") if there are more."""
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SkipImage("too_many_bytes", _too_many_bytes(len(data), max_bytes))
    return data


def _wanted(name: str, ignored: Counter) -> bool:
    """Image extension? Also drops macOS metadata (`__MACOSX/`, `._x.jpg`) that zips often hold."""
    base = name.rsplit("/", 1)[-1]
    if "__MACOSX/" in name or base.startswith("._"):
        ignored["macos-metadata"] += 1
        return False
    suffix = os.path.splitext(base)[1].lower()
    if suffix in IMAGE_EXTENSIONS:
        return True
    ignored[suffix or "(none)"] += 1
    return False


def _folder(root: Path, limit: int | None) -> Source:
    ignored: Counter = Counter()
    names = []
    # followlinks=False: a symlinked directory could loop forever; file symlinks are still read.
    for directory, _, files in os.walk(root):
        for file in files:
            name = (Path(directory) / file).relative_to(root).as_posix()
            if _wanted(name, ignored):
                names.append(name)
    names = sorted(names)[:limit]
    items = (Item(name, path=str(root / name)) for name in names)
    return Source("folder", str(root), items, len(names), ignored)


def _zip(path: Path, limit: int | None) -> Source:
    ignored: Counter = Counter()
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as error:
        raise DataPrepError(f"cannot open zip {path}: {error}") from None
    names = sorted(n for n in names if _wanted(n, ignored))[:limit]
    items = (Item(name, path=str(path), member=name) for name in names)
    return Source("zip", str(path), items, len(names), ignored)


def _tar_items(path: Path, limit: int | None, ignored: Counter, max_bytes: int) -> Iterator[Item]:
    count = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not member.isfile() or not _wanted(name, ignored):
                    continue
                if limit is not None and count >= limit:
                    return
                count += 1
                if member.size > max_bytes:  # never read into memory: the header tells the size
                    yield Item(name, error=_too_many_bytes(member.size, max_bytes), reason="too_many_bytes")
                    continue
                try:
                    handle = archive.extractfile(member)
                    yield Item(name, data=_read_capped(handle, max_bytes) if handle else b"")
                except SkipImage as skip:
                    yield Item(name, error=skip.detail, reason=skip.reason)
                except (OSError, tarfile.TarError, EOFError) as error:
                    yield Item(name, error=f"{type(error).__name__}: {error}")
    except (OSError, tarfile.TarError, EOFError) as error:
        # A truncated archive ends the listing; what came before is kept and this is recorded.
        yield Item(f"{path.name}: rest of archive",
                   error=f"archive ends early: {type(error).__name__}: {error}")


def _tar(path: Path, limit: int | None, max_bytes: int) -> Source:
    if not tarfile.is_tarfile(path):
        raise DataPrepError(f"not a readable tar archive: {path}")
    ignored: Counter = Counter()
    return Source("tar", str(path), _tar_items(path, limit, ignored, max_bytes), None, ignored)


def open_source(source: str | os.PathLike, *, limit: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Source:
    """Open a folder, zip, tar or the literal name "openmoji"; one clear error if it is missing.

    ``max_bytes`` bounds what a tar member may put in memory here; folders and zips are bounded by
    ``read_item``'s own ``max_bytes`` when the bytes are read.
    """
    if str(source) == "openmoji":
        from .openmoji import openmoji_source  # optional extra: imported only when asked for

        return openmoji_source(limit=limit)
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise DataPrepError(f"source not found: {source}")
    if path.is_dir():
        return _folder(path, limit)
    lowered = path.name.lower()
    if lowered.endswith(".zip"):
        return _zip(path, limit)
    if lowered.endswith(TAR_SUFFIXES):
        return _tar(path, limit, max_bytes)
    raise DataPrepError(
        f"source must be a folder, .zip, .tar(.gz/.bz2/.xz) or 'openmoji': {source}")


# Workers keep zip archives open between items: reopening per image would re-read the directory.
_OPEN_ZIPS: dict[tuple[str, int], zipfile.ZipFile] = {}


def read_item(item: Item, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The raw bytes of one item, at most ``max_bytes`` of them.

    Raises SkipImage("too_many_bytes") above the cap and SkipImage("unreadable") on any I/O failure.
    """
    if item.error is not None:
        raise SkipImage(item.reason, item.error)
    if item.data is not None:
        if len(item.data) > max_bytes:
            raise SkipImage("too_many_bytes", _too_many_bytes(len(item.data), max_bytes))
        return item.data
    try:
        if item.member is None:
            with open(item.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > max_bytes:
                    raise SkipImage("too_many_bytes", _too_many_bytes(size, max_bytes))
                return _read_capped(handle, max_bytes)
        key = (item.path, os.stat(item.path).st_mtime_ns)
        if key not in _OPEN_ZIPS:
            _OPEN_ZIPS[key] = zipfile.ZipFile(item.path)
        archive = _OPEN_ZIPS[key]
        declared = archive.getinfo(item.member).file_size
        if declared > max_bytes:  # a zip bomb declares its inflated size; refuse before inflating
            raise SkipImage("too_many_bytes", _too_many_bytes(declared, max_bytes))
        with archive.open(item.member) as handle:  # stops at the declared size even if the data lies
            return _read_capped(handle, max_bytes)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as error:
        raise SkipImage("unreadable", f"{type(error).__name__}: {error}") from None
