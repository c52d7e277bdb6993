"""prepare(): source -> parallel decode/crop/resize/pyramid -> atomic dataset directory.

Workers process items in chunks; results come back in input order (a bounded window of chunks in
flight, so a huge tar never sits in memory), which keeps output bytes independent of worker count
and timing. Every failure of a single file becomes a manifest entry; only user errors stop a run.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import PIL

from .decode import DEFAULT_MAX_PIXELS, decode
from .errors import DataPrepError, SkipImage
from .resize import build_pyramid, is_power_of_two, pyramid_resolutions, square
from .items import Item
from .labels import class_table, make_labeler
from .sources import DEFAULT_MAX_BYTES, open_source, read_item
from .writer import DatasetWriter


@dataclass(frozen=True)
class Settings:
    """Everything that decides the output pixels; stored verbatim in the manifest."""

    resolution: int
    pyramid: bool = True
    crop: str = "center"
    background: tuple[int, int, int] = (255, 255, 255)
    upscale: bool = False
    dedupe: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES  # per file or archive member, before decoding
    channels: int = 3                   # 1 (L), 3 (RGB) or 4 (RGBA)


@dataclass
class Result:
    name: str
    levels: dict[int, np.ndarray] | None = None  # {R: uint8 [C, R, R]} when kept
    digest: str | None = None                    # sha256 of the top level, for dedupe
    reason: str | None = None                    # SkipImage reason when skipped
    detail: str = ""


def load_square(item: Item, settings: Settings) -> np.ndarray:
    """One item -> uint8 [R, R, C] at settings.resolution (C = settings.channels); raises SkipImage."""
    data = read_item(item, max_bytes=settings.max_bytes)
    if item.kind == "svg":
        from .openmoji import render_svg

        data = render_svg(data, settings.resolution)
    image = decode(data, background=settings.background, crop=settings.crop,
                   draft_square=2 * settings.resolution, max_pixels=settings.max_pixels,
                   channels=settings.channels)
    return square(image, settings.resolution, crop=settings.crop,
                  background=settings.background, upscale=settings.upscale)


def process_item(item: Item, settings: Settings) -> Result:
    try:
        top = load_square(item, settings)
    except SkipImage as skip:
        return Result(item.name, reason=skip.reason, detail=skip.detail)
    except Exception as error:  # a decoder bug on one file must not end a million-image run
        return Result(item.name, reason="corrupt", detail=f"{type(error).__name__}: {error}")
    digest = hashlib.sha256(top.tobytes()).hexdigest() if settings.dedupe else None
    levels = build_pyramid(top, pyramid_resolutions(settings.resolution, pyramid=settings.pyramid))
    return Result(item.name, levels, digest)


def _process_chunk(chunk: list[Item], settings: Settings) -> list[Result]:
    return [process_item(item, settings) for item in chunk]


def _init_worker() -> None:
    # Ctrl-C goes to the whole process group; only the parent should react (and clean up).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Pool.terminate() stops workers with SIGTERM; a handler inherited from the CLI must not
    # turn that into an exception inside a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start_method() -> str:
    # fork where the OS has it: workers start instantly and, unlike spawn, never re-run the
    # caller's __main__ (a script without a main guard, a notebook or stdin would break or loop).
    # Workers touch only PIL/numpy, never torch, so a parent's torch threads do not matter.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def ordered_map(
    fn: Callable[[list[Item], Settings], list[Result]],
    items: Iterable[Item], settings: Settings, *, workers: int, chunk: int,
) -> Iterator[Result]:
    """fn over chunks of items in `workers` processes, yielding results in input order."""
    iterator = iter(items)
    chunks = iter(lambda: list(islice(iterator, chunk)), [])
    if workers <= 1:
        for part in chunks:
            yield from fn(part, settings)
        return
    context = multiprocessing.get_context(_start_method())
    with context.Pool(workers, initializer=_init_worker) as pool:  # exit => terminate()
        pending: deque = deque()
        for part in chunks:
            pending.append(pool.apply_async(fn, (part, settings)))
            if len(pending) >= 2 * workers:  # bounded window: memory stays flat
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _progress(results: Iterator[Result], total: int | None, enabled: bool) -> Iterator[Result]:
    if not enabled:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, unit="img", desc="prepare", file=sys.stderr, smoothing=0.05)


def summarize(manifest: dict, seconds: float, out: Path) -> str:
    counts = manifest["counts"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(counts["skipped_by_reason"].items()))
    rate = counts["found"] / seconds if seconds > 0 else 0.0
    return (f"kept {counts['kept']} of {counts['found']} images; skipped {counts['skipped']}"
            f"{f' ({reasons})' if reasons else ''}; duplicates removed {counts['duplicates']}; "
            f"{seconds:.1f} s ({rate:.0f} img/s) -> {out}"
            + (f"; {len(manifest['classes']['names'])} classes" if "classes" in manifest else ""))


def prepare(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    resolution: int,
    pyramid: bool = True,
    crop: str = "center",
    background: tuple[int, int, int] = (255, 255, 255),
    dedupe: bool = False,
    upscale: bool = False,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    limit: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    labels: str | None = None,
    channels: int = 3,
) -> Path:
    """Turn `source` (folder, .zip, .tar*, or "openmoji") into a dataset directory at `out`.

    `labels` records a class per image (`data_prep.labels`): "folders", a .csv/.json labels file, or
    None (the built-in OpenMoji set is then labelled with its Unicode emoji groups; others get none).

    Returns the dataset path. Raises DataPrepError for a missing/empty source, a resolution that
    is not a power of two >= 4, a bad option, an existing `out` without `overwrite`, or a source
    where every file was skipped.
    """
    if not is_power_of_two(resolution):
        raise DataPrepError(f"resolution must be a power of two >= 4, got {resolution}")
    if crop not in ("center", "pad"):
        raise DataPrepError(f"crop must be 'center' or 'pad', got {crop!r}")
    if len(background) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in background):
        raise DataPrepError(f"background must be three integers 0..255, got {background!r}")
    if limit is not None and limit < 1:
        raise DataPrepError(f"limit must be >= 1, got {limit}")
    if max_bytes < 1:
        raise DataPrepError(f"max_bytes must be >= 1, got {max_bytes}")
    if channels not in (1, 3, 4):
        raise DataPrepError(f"channels must be 1 (grayscale), 3 (RGB) or 4 (RGBA), got {channels}")
    settings = Settings(resolution, pyramid, crop, tuple(background), upscale, dedupe, max_pixels, max_bytes,
                        channels)
    workers = default_workers() if workers is None else max(1, int(workers))
    start = time.perf_counter()

    src = open_source(source, limit=limit, max_bytes=max_bytes)
    labeler = make_labeler(labels, source_kind=src.kind)
    first = next(src.items, None)
    if first is None:
        found = f"; ignored {sum(src.ignored.values())} non-image files" if src.ignored else ""
        raise DataPrepError(f"no images found in {source}{found}")
    items = (item for part in ([first], src.items) for item in part)

    resolutions = pyramid_resolutions(resolution, pyramid=pyramid)
    # Chunks of ~4 MiB of pixels: big enough to amortise IPC, small enough at 1024x1024.
    chunk = max(1, min(32, (4 << 20) // (channels * resolution * resolution * 4 // 3)))
    names, classes, skipped, duplicates, seen = [], [], [], [], {}
    with DatasetWriter(Path(out), resolutions, overwrite=overwrite, channels=channels) as writer:
        results = ordered_map(_process_chunk, items, settings, workers=workers, chunk=chunk)
        for result in _progress(results, src.total, progress):
            if result.reason is not None:
                skipped.append({"file": result.name, "reason": result.reason,
                                "detail": result.detail})
                continue
            if dedupe:
                if result.digest in seen:
                    duplicates.append({"file": result.name, "duplicate_of": seen[result.digest]})
                    continue
                seen[result.digest] = result.name
            if labeler is not None:
                label = labeler(result.name)
                if label is None:
                    skipped.append({"file": result.name, "reason": "no_label",
                                    "detail": f"no class from {labeler.source['kind']}"})
                    continue
                classes.append(label)
            writer.add(result.levels)
            names.append(result.name)
        by_reason = Counter(entry["reason"] for entry in skipped)
        if not names:
            raise DataPrepError(f"every image in {source} was skipped: {dict(by_reason)}")
        manifest = {
            "source": {"kind": src.kind, "location": src.location, **src.info},
            "settings": {**asdict(settings), "background": list(background), "limit": limit,
                         "resize": "Pillow LANCZOS (reducing_gap=3) + JPEG draft to >= 2x",
                         "pyramid_filter": "2x2 box, integer mean rounded half up"},
            "software": {"pillow": PIL.__version__, "numpy": np.__version__},
            "counts": {"found": len(names) + len(skipped) + len(duplicates), "kept": len(names),
                       "skipped": len(skipped), "duplicates": len(duplicates),
                       "skipped_by_reason": dict(sorted(by_reason.items())),
                       "ignored_by_extension": dict(sorted(src.ignored.items()))},
            "skipped": skipped,
            "duplicates": duplicates,
        }
        indices = None
        if labeler is not None:
            class_names, indices, counts = class_table(classes, labeler.order)
            manifest["classes"] = {"names": class_names, "counts": counts, "source": labeler.source}
        path = writer.commit(manifest, names, indices)
    if progress:
        print(summarize(manifest, time.perf_counter() - start, path), file=sys.stderr)
    return path
