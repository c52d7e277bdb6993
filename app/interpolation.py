"""Latent-space walks between seeds: linear or spherical in Z, linear in W (StyleGAN-lite).

Spherical interpolation follows White, "Sampling Generative Networks" (2016): Gaussian z live near a
sphere of radius sqrt(latent_dim), and a straight line between two of them passes through the
low-density interior, so slerp keeps the walk on the shell. W (Karras et al. 2019, section 4) is the
output of an MLP, not a Gaussian: it has no sphere to stay on, and the paper's perceptual path
length uses lerp in W, so W only offers lerp. Truncation is linear in w, so it commutes with lerp.

Frames are spread evenly over the whole path; with ``loop=True`` the path returns to the first seed
(for seamless GIFs). Noise is the same for every frame (the first seed's stream, or the constant
buffers) so the video does not flicker.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .keys import Key, has_image, key_latents, key_noise, key_styles
from .sampling import (NOISE_MODES, Progress, _check_truncation, is_stylegan, model_device, seed_latents,
                       seed_noise, synthesize, to_uint8)

__all__ = ["SPACES", "METHODS", "lerp", "slerp", "keyframe_path", "render_interpolation"]

SPACES = ("z", "w")
METHODS = ("lerp", "slerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Straight-line interpolation; ``t`` (a number or a tensor that broadcasts) is taken on ``a``'s device and dtype."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, *, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation along the last dim; unit vectors stay unit. Falls back to lerp when a ~ b."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    a_dir = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b_dir = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    omega = (a_dir * b_dir).sum(-1, keepdim=True).clamp(-1.0, 1.0).acos()  # angle between them
    sin_omega = omega.sin()
    safe = sin_omega.abs() > eps
    denom = torch.where(safe, sin_omega, torch.ones_like(sin_omega))
    spherical = (((1 - t) * omega).sin() / denom) * a + ((t * omega).sin() / denom) * b
    return torch.where(safe, spherical, lerp(a, b, t))


def keyframe_path(keys: torch.Tensor, frames: int, *, method: str = "lerp", loop: bool = False) -> torch.Tensor:
    """``keys [K, ...] -> [frames, ...]``: evenly spaced points on the piecewise path through the keys.

    The first frame is ``keys[0]``; the last is ``keys[-1]``, or, with ``loop``, one step before
    ``keys[0]`` again (so repeating the clip is seamless).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if keys.shape[0] < 2:
        raise ValueError("interpolation needs at least two seeds")
    if frames < 2:
        raise ValueError("interpolation needs at least two frames")
    if loop:
        keys = torch.cat([keys, keys[:1]])
        positions = torch.arange(frames, dtype=torch.float64) * (keys.shape[0] - 1) / frames
    else:
        positions = torch.linspace(0, keys.shape[0] - 1, frames, dtype=torch.float64)
    segment = positions.floor().long().clamp(max=keys.shape[0] - 2)          # [frames]
    # on the keys' device: a model on a GPU walks GPU keys, and a CPU t would not broadcast against them
    t = (positions - segment).to(device=keys.device, dtype=keys.dtype).view(-1, *[1] * (keys.dim() - 1))
    interp = slerp if method == "slerp" else lerp
    return interp(keys[segment], keys[segment + 1], t)


@torch.inference_mode()
def render_interpolation(generator: nn.Module, seeds: Sequence[Key], *, frames: int, space: str = "z",
                         method: str = "lerp", loop: bool = False, psi: float = 1.0, cutoff: int | None = None,
                         noise: str = "fixed", batch_size: int = 16, progress: Progress | None = None) -> np.ndarray:
    """Render the walk through ``seeds`` (ints, or projected images: ``app.keys``): ``[frames, R, R, 3]`` uint8."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}; got {space!r}")
    if noise not in NOISE_MODES:
        raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}; got {noise!r}")
    stylegan = is_stylegan(generator)
    if space == "w" and not stylegan:
        raise ValueError("ProGAN has no W space: interpolate in z")
    if space == "w" and method == "slerp":
        raise ValueError("slerp in W is not meaningful (W is not a Gaussian sphere): use lerp in W or slerp in z")
    _check_truncation(generator, psi, cutoff)
    if has_image(seeds):
        return _render_through_image(generator, seeds, frames=frames, space=space, method=method, loop=loop,
                                     psi=psi, cutoff=cutoff, noise=noise, batch_size=batch_size, progress=progress)
    device = model_device(generator)
    z_keys = seed_latents(seeds, generator.config.latent_dim).to(device)      # [K, latent_dim]
    if space == "w":
        path = keyframe_path(generator.mapping(z_keys), frames, method="lerp", loop=loop)  # [T, w_dim]
    else:
        path = keyframe_path(z_keys, frames, method=method, loop=loop)       # [T, latent_dim]
    # one noise draw for the whole clip: per-frame noise would make the video flicker
    noise_one = seed_noise(generator, seeds[:1]) if stylegan and noise == "random" else None

    def render(chunk: torch.Tensor) -> torch.Tensor:
        if not stylegan:
            return generator(chunk)
        w = generator.mapping(chunk) if space == "z" else chunk
        ws = generator.truncate(generator.broadcast(w), psi=psi, cutoff=cutoff)
        noise_tensors = [n.expand(len(chunk), -1, -1, -1) for n in noise_one] if noise_one else None
        return synthesize(generator, ws, noise=noise, noise_tensors=noise_tensors)

    return _render_in_batches(render, path, batch_size=batch_size, progress=progress)


def _render_in_batches(render: Callable[[torch.Tensor], torch.Tensor], path: torch.Tensor, *, batch_size: int,
                       progress: Progress | None) -> np.ndarray:
    """``render`` over ``path`` (one latent per frame) in batches -> uint8 frames ``[F, R, R, 3]``."""
    frames, out = len(path), []
    for start in range(0, frames, batch_size):
        out.append(to_uint8(render(path[start:start + batch_size])))
        if progress is not None:
            progress(min(start + batch_size, frames), frames)
    return np.concatenate(out)


def _render_through_image(generator: nn.Module, keys: Sequence[Key], *, frames: int, space: str, method: str,
                          loop: bool, psi: float, cutoff: int | None, noise: str, batch_size: int,
                          progress: Progress | None) -> np.ndarray:
    """A walk whose keys include a projected image: in W(+) for StyleGAN-lite, in z for ProGAN.

    The clip uses the first projected image's noise maps for every frame (no flicker, and the
    image's own frame reproduces its reconstruction).
    """
    stylegan = is_stylegan(generator)
    if stylegan and (space != "w" or method != "lerp"):
        raise ValueError("your image is a point in W: interpolate with lerp in space w")
    if stylegan:
        path = keyframe_path(key_styles(generator, keys, psi=psi, cutoff=cutoff), frames, method="lerp", loop=loop)
        first = next(i for i, k in enumerate(keys) if not isinstance(k, int))
        noise_one = key_noise(generator, keys[first:first + 1], noise)
    else:
        path = keyframe_path(key_latents(generator, keys), frames, method=method, loop=loop)

    def render(chunk: torch.Tensor) -> torch.Tensor:
        if not stylegan:
            return generator(chunk)
        return generator.synthesis(chunk, noise=[n.expand(len(chunk), -1, -1, -1) for n in noise_one])

    return _render_in_batches(render, path, batch_size=batch_size, progress=progress)
