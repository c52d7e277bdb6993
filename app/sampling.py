"""Seeds -> latents -> images: the reproducible sampling core of the app and the CLI.

Reproducibility contract: seed ``s`` always gives the same latent, on every run and every device,
because ``z`` is drawn on the CPU from its own ``torch.Generator`` seeded with ``s`` and only then
moved to the model's device. Each seed has its own generator, so an image does not depend on which
other seeds share its grid or batch. With ``noise="random"`` a StyleGAN-lite image's per-layer
noise is drawn from the same seeded generator right after ``z`` (Karras et al. 2019, section 2
"stochastic variation"), so "random" noise is reproducible per seed too; ``"fixed"`` uses the
generator's constant noise buffers and ``"none"`` disables noise. Identical latents give identical
images up to floating-point differences between devices and batch sizes (a few 1e-6).

Truncation (Karras et al. 2019, section 3 / appendix B) is defined in W, so ``psi`` and ``cutoff``
apply to StyleGAN-lite only: ProGAN pixel-normalises z onto a sphere, where scaling z is a no-op.
Everything here is pure torch/PIL, with no Gradio, so the CLI and the tests share it.
"""
from __future__ import annotations

import math
import re
import secrets
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from progan.images import PIL_MODES, to_pil
from progan.images import to_uint8 as progan_to_uint8

__all__ = [
    "MAX_SEED", "NOISE_MODES", "Progress", "parse_seeds", "seed_latents", "seed_noise", "is_stylegan",
    "model_device", "to_uint8", "styles_from_z", "synthesize", "generate_images", "make_grid",
]

MAX_SEED = 2**32 - 1                  # torch.Generator.manual_seed accepts any 64-bit value; 32 bits are plenty to type
NOISE_MODES = ("random", "fixed", "none")
Progress = Callable[[int, int], None]  # progress(done, total), called after every batch
_NOISE_MODE = {"random": "random", "fixed": "const", "none": "none"}  # UI name -> Generator's noise_mode
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_RANDOM = re.compile(r"^random(?:\s*[:x*]\s*(\d+))?$")


def parse_seeds(text: str, *, max_count: int) -> list[int]:
    """Parse ``"3"``, ``"0-15"``, ``"1,5,9"``, ``"2,10-12"``, ``"random"`` or ``"random:16"``.

    Random seeds are drawn from the OS and returned, so the caller can show and reuse them.
    Raises ``ValueError`` with a one-line message for malformed text or too many seeds.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError('seeds are empty: type e.g. "3", "0-15", "1,5,9" or "random:8"')
    seeds: list[int] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if match := _RANDOM.match(part):
            count = int(match.group(1) or 1)
            if count < 1:
                raise ValueError(f"random:{count} asks for no seeds")
            new = [secrets.randbelow(2**31) for _ in range(min(count, max_count + 1))]
        elif match := _RANGE.match(part):
            start, stop = int(match.group(1)), int(match.group(2))
            if stop < start:
                raise ValueError(f"seed range {part!r} runs backwards; write {stop}-{start}")
            if stop > MAX_SEED:
                raise ValueError(f"seeds must be between 0 and {MAX_SEED}, got {stop}")
            if stop - start + 1 + len(seeds) > max_count:  # checked before expanding 0-999999999
                raise ValueError(f"too many seeds: at most {max_count} per request")
            new = list(range(start, stop + 1))
        elif part.isdigit():
            new = [int(part)]
            if new[0] > MAX_SEED:
                raise ValueError(f"seeds must be between 0 and {MAX_SEED}, got {part}")
        else:
            raise ValueError(f'cannot read seed {part!r}: use e.g. "3", "0-15", "1,5,9" or "random:8"')
        seeds.extend(new)
        if len(seeds) > max_count:
            raise ValueError(f"too many seeds: at most {max_count} per request, got {len(seeds)}+")
    return seeds


def is_stylegan(generator: nn.Module) -> bool:
    return generator.config.family == "stylegan_lite"


def model_device(generator: nn.Module) -> torch.device:
    return next(generator.parameters()).device


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(int(seed))


def seed_latents(seeds: Sequence[int], latent_dim: int) -> torch.Tensor:
    """``[N, latent_dim]`` on the CPU; row i depends on ``seeds[i]`` alone."""
    if not seeds:
        return torch.empty(0, latent_dim)
    return torch.cat([torch.randn(1, latent_dim, generator=_seeded(s)) for s in seeds])


def seed_noise(generator: nn.Module, seeds: Sequence[int]) -> list[torch.Tensor]:
    """Per-layer noise ``[N, 1, r, r]`` (CPU) for a StyleGAN-lite generator, continuing each seed's stream after z."""
    per_seed = []
    for s in seeds:
        rng = _seeded(s)
        torch.randn(1, generator.config.latent_dim, generator=rng)  # skip z: noise follows it in the stream
        per_seed.append(generator.synthesis.make_noise(1, generator=rng))
    return [torch.cat(layer) for layer in zip(*per_seed)]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` floats in ~[-1, 1] -> ``[N, H, W, C]`` uint8 numpy (round to nearest, clamp)."""
    return progan_to_uint8(images).numpy()


def styles_from_z(generator: nn.Module, z: torch.Tensor, *, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
    """StyleGAN-lite: ``z [N, latent_dim] -> ws [N, num_ws, w_dim]``, truncated on layers ``< cutoff``."""
    ws = generator.broadcast(generator.mapping(z))
    return generator.truncate(ws, psi=psi, cutoff=cutoff)


def synthesize(generator: nn.Module, ws: torch.Tensor, *, noise: str = "random",
               noise_tensors: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """StyleGAN-lite synthesis with the app's noise modes; ``noise_tensors`` are used for ``"random"``."""
    if noise == "random" and noise_tensors is not None:
        device = ws.device
        return generator.synthesis(ws, noise=[n.to(device) for n in noise_tensors])
    return generator.synthesis(ws, noise_mode=_NOISE_MODE[noise])


def _check_truncation(generator: nn.Module, psi: float, cutoff: int | None) -> None:
    if is_stylegan(generator) and cutoff is not None and not 0 <= cutoff <= generator.num_ws:
        raise ValueError(f"cutoff must be between 0 and {generator.num_ws} (layers of this model), got {cutoff}")


@torch.inference_mode()
def generate_images(generator: nn.Module, seeds: Sequence[int], *, psi: float = 1.0, cutoff: int | None = None,
                    noise: str = "random", batch_size: int = 16, progress: Progress | None = None) -> np.ndarray:
    """One image per seed: ``[N, R, R, C]`` uint8 (C = the model's image_channels). ``psi``/``cutoff``/``noise`` matter for StyleGAN-lite only."""
    if noise not in NOISE_MODES:
        raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}; got {noise!r}")
    _check_truncation(generator, psi, cutoff)
    device = model_device(generator)
    out = []
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        z = seed_latents(chunk, generator.config.latent_dim).to(device)  # [B, latent_dim]
        if is_stylegan(generator):
            ws = styles_from_z(generator, z, psi=psi, cutoff=cutoff)     # [B, num_ws, w_dim]
            noise_tensors = seed_noise(generator, chunk) if noise == "random" else None
            images = synthesize(generator, ws, noise=noise, noise_tensors=noise_tensors)
        else:
            images = generator(z)
        out.append(to_uint8(images))
        if progress is not None:
            progress(min(start + batch_size, len(seeds)), len(seeds))
    r = generator.config.resolution
    return np.concatenate(out) if out else np.zeros((0, r, r, generator.config.image_channels), np.uint8)


def make_grid(images: Sequence[np.ndarray | None], *, columns: int | None = None, padding: int = 0,
              fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Tile ``[H, W, C]`` uint8 images row-major into one picture; ``None`` leaves a blank cell.

    ``columns`` defaults to ``ceil(sqrt(N))``; the result is ``cols*W + (cols-1)*padding`` wide.
    The picture's mode follows C (``progan.images.PIL_MODES``: L, RGB, RGBA); RGBA padding is transparent.
    """
    cells = list(images)
    first = next((im for im in cells if im is not None), None)
    if first is None:
        raise ValueError("make_grid needs at least one image")
    h, w = first.shape[:2]
    cols = columns or math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / cols)
    mode = PIL_MODES.get(first.shape[2] if first.ndim == 3 else 3, "RGB")
    background = {"L": Image.new("RGB", (1, 1), fill).convert("L").getpixel((0, 0)), "RGB": fill,
                  "RGBA": (*fill, 0)}[mode]
    canvas = Image.new(mode, (cols * w + (cols - 1) * padding, rows * h + (rows - 1) * padding), background)
    for i, image in enumerate(cells):
        if image is not None:
            r, c = divmod(i, cols)
            canvas.paste(to_pil(np.asarray(image)), (c * (w + padding), r * (h + padding)))
    return canvas
