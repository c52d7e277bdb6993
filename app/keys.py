"""Keyframes that are seeds or a projected image: the ``image`` token in the seed boxes.

After a visitor projects a picture (``app.projection``), the interpolation and style-mixing seed
boxes accept ``image`` next to seeds (``"image,3,7"``): the walk or the mixing grid then passes
through the picture's own latent. For StyleGAN-lite that latent lives in W (or W+), so a walk
through it runs in W (lerp); for ProGAN it is a z and any walk works. A projected latent is not
truncated (psi pulls only the seeds towards ``w_avg``; it is linear, so truncating the keys equals
truncating the path), and it always brings its own optimised noise maps, which is what makes it
reproduce the picture; seeds follow the chosen noise mode.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from .projection import Projection, check_compatible
from .sampling import model_device, parse_seeds, seed_latents, seed_noise, styles_from_z

__all__ = ["IMAGE_TOKEN", "Key", "parse_keys", "has_image", "key_styles", "key_latents", "key_noise"]

IMAGE_TOKEN = "image"
Key = Union[int, Projection]


def parse_keys(text: str, *, max_count: int, projection: Projection | None) -> list[Key]:
    """Like ``parse_seeds``, plus the token ``image`` for ``projection``. Raises ValueError (one line)."""
    if not isinstance(text, str) or IMAGE_TOKEN not in text.lower():
        return list(parse_seeds(text, max_count=max_count))
    keys: list[Key] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            keys.extend(parse_seeds(",".join(pending), max_count=max_count - len(keys)))
            pending.clear()

    for part in text.split(","):
        if part.strip().lower() == IMAGE_TOKEN:
            if projection is None:
                raise ValueError('"image" needs a projected image: project one in the "Your image" tab first')
            flush()
            keys.append(projection)
        else:
            pending.append(part)
    flush()
    if len(keys) > max_count:
        raise ValueError(f"too many seeds: at most {max_count} per request")
    return keys


def has_image(keys: Sequence[Key]) -> bool:
    return any(isinstance(k, Projection) for k in keys)


def _check(generator: nn.Module, keys: Sequence[Key]) -> None:
    for key in keys:
        if isinstance(key, Projection):
            check_compatible(key, generator)


def key_styles(generator: nn.Module, keys: Sequence[Key], *, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
    """StyleGAN-lite ``ws [K, num_ws, w_dim]``: seeds mapped and truncated, projections as optimised."""
    _check(generator, keys)
    device = model_device(generator)
    rows = []
    for key in keys:
        if isinstance(key, Projection):
            rows.append(key.ws(generator))
        else:
            z = seed_latents([key], generator.config.latent_dim).to(device)
            rows.append(styles_from_z(generator, z, psi=psi, cutoff=cutoff))
    return torch.cat(rows)


def key_latents(generator: nn.Module, keys: Sequence[Key]) -> torch.Tensor:
    """ProGAN ``z [K, latent_dim]``: seeds drawn as in ``app.sampling``, projections as optimised."""
    _check(generator, keys)
    device = model_device(generator)
    return torch.cat([k.latent.to(device) if isinstance(k, Projection) else
                      seed_latents([k], generator.config.latent_dim).to(device) for k in keys])


def key_noise(generator: nn.Module, keys: Sequence[Key], noise: str) -> list[torch.Tensor]:
    """Explicit per-layer noise ``[K, 1, r, r]``: a projection's own maps, seeds by ``noise`` mode."""
    synthesis = generator.synthesis
    per_key = []
    for key in keys:
        if isinstance(key, Projection):
            per_key.append(list(key.noise))
        elif noise == "random":
            per_key.append(seed_noise(generator, [key]))
        elif noise == "fixed":
            per_key.append([getattr(synthesis, f"noise_const_{i}").cpu() for i in range(len(synthesis.layers))])
        else:
            per_key.append([torch.zeros(1, 1, r, r) for r in generator.config.resolutions for _ in range(2)])
    device = model_device(generator)
    return [torch.cat(layer).to(device) for layer in zip(*per_key)]
