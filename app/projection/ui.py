"""The "Your image" tab's work: upload -> data_prep decoding -> projection, streamed to the page.

Bounded like every other event (``app.limits``): the file's suffix, byte size and decoded pixel
count are checked before the pixels are decoded, steps are capped per resolution, and the event
runs one projection at a time through the queue. Privacy: the visitor's upload is read once and
deleted from Gradio's upload folder at once; the work happens in a ``TemporaryDirectory`` that
is removed when the request ends. What stays is what any event returns (the before/after
picture and the latent file, served from Gradio's cache and pruned with it) and the latent in the
visitor's session (``gr.State`` with a time to live), so the other tabs can use it as ``image``.

``run_projection`` streams ``ProjectionUpdate`` records (step, total, loss, picture; the result on
the last one), so the page's progress bar and status are formatted from numbers, not parsed from
text (``project_status``).
"""
from __future__ import annotations

import functools
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr
import numpy as np

from ..display import PIXELATED_FILL
from ..limits import Limits, check_choice, check_int
from ..models import ModelStore
from ..sampling import is_stylegan
from .projector import Projection, ProjectionOptions, image_to_target, projection_steps, reconstruction_pixels
from .target import before_after, load_target

__all__ = ["UPLOAD_SUFFIXES", "ProjectionUpdate", "read_upload", "run_projection", "project_status",
           "build_project_tab"]

UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_UPDATES = 12  # pictures streamed per projection


@dataclass(frozen=True)
class ProjectionUpdate:
    """One streamed state of a projection; the last one (``done``) carries the result."""

    step: int                            # optimiser steps done
    total: int                           # steps asked for
    loss: float                          # the projection loss at ``step``
    picture: np.ndarray                  # uint8 target | reconstruction, native pixels ``[R, 2R + gap, 3]``
    space: str                           # "w", "w+" or "z"
    seconds: float                       # since the projection started
    projection: Projection | None = None  # the result: on the last update only
    latent: str | None = None            # the saved latent file: on the last update only

    @property
    def done(self) -> bool:
        return self.projection is not None


def _size(n: int) -> str:
    """A byte count as people read it: whole MiB as "8 MiB", other MiB to a tenth, under 1 MiB in bytes."""
    if n < 2**20:
        return f"{n:,} bytes"
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n / 2**20:.1f} MiB"


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
            raise ValueError(f"the image is {_size(size)}; the limit is {_size(limits.max_upload_bytes)}")
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
                   limits: Limits) -> Iterator[ProjectionUpdate]:
    """Yield a ``ProjectionUpdate`` about ``_UPDATES`` times as it converges, then the final one (``done``)."""
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
                yield ProjectionUpdate(state.step, state.steps, state.loss, shown, space, time.perf_counter() - start)
        projection = result[0]
        projection.metadata.update({"model": label})
        latent = projection.save(Path(work) / "latent.safetensors")
        final = np.asarray(picture(target, reconstruction_pixels(projection.render(generator))))
        yield ProjectionUpdate(steps, steps, projection.loss, final, space, time.perf_counter() - start,
                               projection=projection, latent=str(latent))


def project_status(update: ProjectionUpdate) -> str:
    """The status line the page shows for ``update``."""
    if not update.done:
        return f"step {update.step}/{update.total}, loss {update.loss:.4f}"
    where = "lerp in space w" if update.space != "z" else "any method in z"
    return (f"projected into {update.space} in {update.total} steps ({update.seconds:.1f} s), loss {update.loss:.4f}. "
            f"Type **image** among the seeds in Interpolation ({where}) or Style mixing to use it. "
            f"Your upload was deleted from the server after reading.")


def build_project_tab(store: ModelStore, *, limits: Limits, model: gr.components.Component, mine: gr.State,
                      wrap: Callable[[Callable], Callable]) -> None:
    """Components and event of the tab; call inside ``with gr.Tab("Your image"):`` of ``app.ui.build_demo``.
    ``mine`` is the visitor's projection, which the event replaces when a projection finishes."""
    gr.Markdown("Upload a picture: the model searches for the latent that draws it (Karras et al. 2020, "
                "section 5). Then type **image** among the seeds in Interpolation (space w) or Style "
                "mixing. Your file is deleted from the server as soon as it has been read.")
    with gr.Row():
        p_file = gr.File(label="Image", file_types=list(UPLOAD_SUFFIXES), type="filepath", elem_id="upload")
        with gr.Column():
            p_steps = gr.Slider(10, limits.max_projection_steps, value=min(200, limits.max_projection_steps),
                                step=10, label="Steps", info="capped lower for large models")
            p_space = gr.Radio(["w", "w+"], value="w", label="Latent space (StyleGAN-lite)",
                               info="w+: one w per layer, closer fit; ProGAN always uses z")
            p_button = gr.Button("Project", variant="primary", elem_id="project")
    p_image = gr.Image(label="Your image | its projection", type="numpy", format="png", elem_id="projection",
                       height=280, elem_classes=PIXELATED_FILL)
    with gr.Row():
        p_latent = gr.File(label="Latent (safetensors)", elem_id="latent")
        p_status = gr.Markdown(elem_id="project-status")

    @wrap
    def project_image(model_label: str, upload, steps: int, space: str, previous: Any = None,
                      progress=gr.Progress()):
        data, name = read_upload(upload, limits)  # deleted from the server here, whatever follows
        generator = store.get(model_label)
        yield gr.update(), None, "reading the image...", previous
        for update in run_projection(generator, data, name, label=model_label, steps=steps, space=space,
                                     limits=limits):
            if update.done:
                yield update.picture, update.latent, project_status(update), update.projection
            else:
                progress((update.step, update.total), desc="projecting")
                yield update.picture, None, project_status(update), previous

    # one projection at a time: it is the heaviest event; others wait in the queue
    p_button.click(project_image, [model, p_file, p_steps, p_space, mine], [p_image, p_latent, p_status, mine],
                   api_name="project", concurrency_limit=1)
