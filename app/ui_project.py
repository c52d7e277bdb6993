"""The "Your image" tab's work: upload -> data_prep decoding -> projection, streamed to the page.

Bounded like every other event (``app.limits``): the file's suffix, byte size and decoded pixel
count are checked before the pixels are decoded, steps are capped per resolution, and the event
runs one projection at a time through the queue. Privacy: the visitor's upload is read once and
deleted from Gradio's upload folder at once; the work happens in a ``TemporaryDirectory`` that
is removed when the request ends. What stays is what any event returns (the before/after
picture and the latent file, served from Gradio's cache and pruned with it) and the latent in the
visitor's session (``gr.State`` with a time to live), so the other tabs can use it as ``image``.
"""
from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .limits import Limits, check_choice, check_int
from .project import before_after, load_target
from .projection import Projection, ProjectionOptions, image_to_target, projection_steps, reconstruction_pixels
from .sampling import is_stylegan

__all__ = ["UPLOAD_SUFFIXES", "read_upload", "run_projection"]

UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_UPDATES = 12  # pictures streamed per projection


def read_upload(path: str | os.PathLike | None, limits: Limits) -> tuple[bytes, str]:
    """The upload's bytes and name; the file is deleted from the server whatever happens."""
    if not path:
        raise ValueError("upload an image first (PNG, JPEG, WebP, GIF, BMP or TIFF)")
    path = Path(path)
    try:
        if path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise ValueError(f"{path.suffix or 'this file type'} is not accepted; upload "
                             f"{', '.join(s.lstrip('.') for s in UPLOAD_SUFFIXES)}")
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise ValueError(f"the image is {size / 2**20:.1f} MiB; the limit is {limits.max_upload_bytes // 2**20} MiB")
        return path.read_bytes(), path.name
    except FileNotFoundError:
        raise ValueError("the upload is gone from the server (it is deleted after each use): upload it again") from None
    finally:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio keeps each upload in its own folder
        except OSError:
            pass


def run_projection(generator, data: bytes, name: str, *, label: str, steps: object, space: str,
                   limits: Limits) -> Iterator[tuple[np.ndarray, str | None, str, Projection | None]]:
    """Yield ``(before/after picture, latent file or None, status, projection or None)`` as it converges."""
    resolution = generator.config.resolution
    allowed = limits.projection_steps_allowed(resolution)
    steps = check_int("steps", steps, 1, allowed)
    if is_stylegan(generator):
        space = check_choice("space", space, ("w", "w+"))
    else:
        space = "z"  # ProGAN has no W; the radio's value is ignored
    target = load_target(data, resolution, name=name, max_pixels=limits.max_upload_pixels)
    options = ProjectionOptions(steps=steps, space=space, w_avg_samples=min(10_000, max(1000, 4 * 10**8 // resolution**2)))
    every = max(1, steps // _UPDATES)
    # native pixels (the page enlarges them, app.display): 16x less to encode per streamed update
    picture = functools.partial(before_after, min_size=1, gap=max(1, resolution // 32))
    start = time.perf_counter()
    result: list[Projection] = []
    with tempfile.TemporaryDirectory(prefix="gan-studio-project-") as work:
        for state in projection_steps(generator, image_to_target(target), options, result=result):
            if state.step % every == 0 and state.step < state.steps:
                shown = np.asarray(picture(target, reconstruction_pixels(state.image)))
                yield shown, None, f"step {state.step}/{state.steps}, loss {state.loss:.4f}", None
        projection = result[0]
        projection.metadata.update({"model": label})
        latent = projection.save(Path(work) / "latent.safetensors")
        final = reconstruction_pixels(projection.render(generator))
        seconds = time.perf_counter() - start
        where = "lerp in space w" if space != "z" else "any method in z"
        status = (f"projected into {space} in {steps} steps ({seconds:.1f} s), loss {projection.loss:.4f}. "
                  f'Type **image** among the seeds in Interpolation ({where}) or Style mixing to use it. '
                  f"Your upload was deleted from the server after reading.")
        yield np.asarray(picture(target, final)), str(latent), status, projection
