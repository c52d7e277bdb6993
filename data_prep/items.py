"""What a source yields: `Item`s (one candidate image each) inside a `Source` (the items plus what the
manifest says about where they came from). Shared by every source, the built-in OpenMoji one included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["Item", "Source"]


@dataclass(frozen=True)
class Item:
    """One candidate image. Exactly one of `path` (maybe with `member`), `data`, `error` is set."""

    name: str                    # stable relative name, written to the manifest
    kind: str = "raster"         # "raster" (PIL decodes it) or "svg" (resvg renders it)
    path: str | None = None      # file on disk, or the zip archive when `member` is set
    member: str | None = None    # member name inside the zip at `path`
    data: bytes | None = None    # bytes already read (tar members)
    error: str | None = None     # reading failed in the main process (broken tar)
    reason: str = "unreadable"   # the SkipImage reason that goes with `error`


@dataclass
class Source:
    """An opened source: its items (a one-shot iterator) plus what the manifest says about it."""

    kind: str
    location: str
    items: Iterator[Item]
    total: int | None                  # known up front for folders/zips; None for tars
    ignored: Counter = field(default_factory=Counter)  # files left out, by extension
    info: dict = field(default_factory=dict)           # extra manifest fields (package version)
