"""Server-side bounds on everything a visitor (or a CLI user) controls.

The Gradio sliders already clamp values in the browser, but the HTTP API can be called directly
(``gradio_client``, curl), so every event re-checks its inputs here before touching the model.
Each check raises ``ValueError`` with a one-line message; the UI turns it into ``gr.Error`` and the
CLI into an ``argparse`` error, so a bad request never takes the server down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS", "CLI_LIMITS", "check_range", "check_int", "check_choice"]


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one request. ``max_pixels`` caps grid size for high-resolution models."""

    max_images: int = 64              # images in a sampling grid
    max_pixels: int = 96 * 256 * 256  # output pixels per request: an 8x8 mixing figure at 256 px, 6 images at 1024 px
    max_keyframes: int = 16           # seeds an interpolation passes through
    max_frames: int = 240             # frames of one video (10 s at 24 fps)
    max_video_pixels: int = 240 * 256 * 256  # frames x pixels: 240 frames at 256 px, 15 at 1024 px
    min_fps: int = 1
    max_fps: int = 60
    max_mix_seeds: int = 8            # rows and columns of the style-mixing grid, each
    psi_min: float = -1.0             # truncation psi: 0 = w_avg, 1 = off, < 0 mirrors around w_avg
    psi_max: float = 2.0
    max_resolution: int = 1024        # largest model the app will load from a visitor's URL
    max_upload_bytes: int = 8 * 2**20       # an uploaded image for projection
    max_upload_pixels: int = 40_000_000     # its decoded size (a 40 Mpx photo); data_prep refuses more
    max_projection_steps: int = 300         # optimiser steps of one projection ...
    projection_budget: int = 300 * 64 * 64  # ... and steps x pixels: 300 at 64 px, 75 at 128 px, 10 at 1024 px

    def images_allowed(self, resolution: int) -> int:
        """How many ``resolution``-sized images one request may produce (at least one)."""
        return max(1, min(self.max_images, self.max_pixels // (resolution * resolution)))

    def frames_allowed(self, resolution: int) -> int:
        """How many frames one video of a ``resolution``-sized model may have (at least two)."""
        return max(2, min(self.max_frames, self.max_video_pixels // (resolution * resolution)))


    def projection_steps_allowed(self, resolution: int) -> int:
        """How many projection steps one request may run on a ``resolution``-sized model (at least 10)."""
        return max(10, min(self.max_projection_steps, self.projection_budget // (resolution * resolution)))


DEFAULT_LIMITS = Limits()
# the CLI runs on the user's own machine: same safety checks, roomier bounds
CLI_LIMITS = Limits(max_images=1024, max_pixels=2**32, max_keyframes=256, max_frames=10_000,
                    max_video_pixels=2**36, max_mix_seeds=32, max_resolution=2**16)


def check_range(name: str, value: object, low: float, high: float) -> float:
    """``value`` as a finite float in ``[low, high]``; NaN, inf and non-numbers are refused."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; a float is accepted only when it is whole (5.0)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    number = check_range(name, value, low, high)
    if number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_truncation(config, psi: object, cutoff: object, limits: Limits) -> tuple[float, int | None]:
    """Validate ``psi`` against the limits and ``cutoff`` against the model's style layers.

    ``cutoff`` None/"" means every layer. ProGAN ignores both, but they are still checked so a
    malformed request is refused the same way for every model.
    """
    psi = check_range("psi", psi, limits.psi_min, limits.psi_max)
    if cutoff is None or cutoff == "":
        return psi, None
    layers = 2 * config.num_stages  # StyleGAN-lite's num_ws; the same bound for ProGAN
    return psi, check_int("cutoff", cutoff, 0, layers)
