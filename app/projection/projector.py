"""Projection: find the latent (and noise) whose image is closest to a given picture.

Follows the StyleGAN2 projector (Karras et al. 2020, section 5 and appendix D; NVIDIA's
``projector.py`` in stylegan2-ada-pytorch), with an offline distance (``app.projection.loss``):

- StyleGAN-lite: optimise one ``w`` broadcast to every layer (or, with ``space="w+"``, one w per
  layer: Abdal et al. 2019, "Image2StyleGAN", section 3) plus every per-layer noise map. Start at
  ``w_avg``, estimated from 10,000 mapped z; Adam(0.9, 0.999) with a learning rate that ramps up over
  the first 5% of steps and down (cosine) over the last 25%; Gaussian noise on w of std
  ``0.05 * w_std * max(0, 1 - t / 0.75)**2`` so early steps explore; the noise maps carry the
  multi-scale autocorrelation penalty (weight 1e5) and are re-normalised to zero mean and unit
  variance after every step, so they cannot absorb the image.
- ProGAN has no W: optimise z with the same schedule, starting from the best of 64 random z, and
  put z back on its sphere of radius ``sqrt(latent_dim)`` after every step (the generator
  pixel-normalises z, so only its direction matters).

The result is a ``Projection`` (latent, noise, reconstruction) that saves to and loads from
safetensors, and that the interpolation and style-mixing code use like a seed.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..sampling import is_stylegan, model_device, to_uint8
from .loss import LOSSES, make_distance

__all__ = ["SPACES", "ProjectionOptions", "Projection", "ProjectionStep", "projection_steps", "project"]

SPACES = ("w", "w+", "z")
_FORMAT = "gan-studio-projection"


@dataclass(frozen=True)
class ProjectionOptions:
    """Hyper-parameters of the projector (defaults: NVIDIA's, except ``steps`` and the distance)."""

    steps: int = 300                   # NVIDIA uses 1000; our small models converge in a few hundred
    space: str | None = None           # "w" / "w+" (StyleGAN-lite) or "z" (ProGAN); None: w or z
    loss: str = "lap"                  # see app.projection.loss; chosen by measurement (docs/projection.md)
    initial_lr: float = 0.1
    lr_rampup: float = 0.05            # fraction of steps to ramp the learning rate up
    lr_rampdown: float = 0.25          # fraction of steps to ramp it down (cosine)
    initial_noise_factor: float = 0.05  # w-noise std at step 0, in units of w_std
    noise_ramp: float = 0.75           # w-noise decays to 0 over this fraction of steps
    noise_weight: float = 1e5          # weight of the noise-map regulariser
    w_avg_samples: int = 10_000
    z_candidates: int = 64             # ProGAN: random starts tried before optimising
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise ValueError(f"steps must be between 1 and 100000, got {self.steps}")
        if self.space is not None and self.space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}; got {self.space!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")


@dataclass
class Projection:
    """A projected image: ``latent`` is z ``[1, latent_dim]``, w ``[1, w_dim]`` or w+ ``[1, num_ws, w_dim]``."""

    family: str
    space: str
    latent: torch.Tensor
    noise: list[torch.Tensor] = field(default_factory=list)   # StyleGAN-lite: [1, 1, r, r] per layer
    loss: float = float("nan")
    steps: int = 0
    metadata: dict = field(default_factory=dict)

    def ws(self, generator: nn.Module) -> torch.Tensor:
        """StyleGAN-lite styles ``[1, num_ws, w_dim]`` on the generator's device."""
        latent = self.latent.to(model_device(generator))
        return generator.broadcast(latent) if self.space == "w" else latent

    @torch.inference_mode()
    def render(self, generator: nn.Module) -> torch.Tensor:
        """The reconstruction ``[1, 3, R, R]`` in [-1, 1]."""
        check_compatible(self, generator)
        if self.space == "z":
            return generator(self.latent.to(model_device(generator)))
        return generator.synthesis(self.ws(generator), noise=[n.to(model_device(generator)) for n in self.noise])

    def save(self, path: str | os.PathLike) -> Path:
        from safetensors.torch import save_file

        tensors = {"latent": self.latent.detach().float().cpu().contiguous()}
        tensors.update({f"noise.{i}": n.detach().float().cpu().contiguous() for i, n in enumerate(self.noise)})
        meta = {"format": _FORMAT, "family": self.family, "space": self.space, "loss": repr(self.loss),
                "steps": str(self.steps), "info": json.dumps(self.metadata)}
        save_file(tensors, str(path), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Projection":
        """Read a file written by ``save``; raises ValueError (one line) for anything else."""
        from progan.hub.export import read_safetensors

        meta, tensors = read_safetensors(path, what="projection file")
        if meta.get("format") != _FORMAT or "latent" not in tensors or meta.get("space") not in SPACES:
            raise ValueError(f"{path}: not a projection file written by app.project")
        noise = [tensors[f"noise.{i}"] for i in range(sum(k.startswith("noise.") for k in tensors))]
        return cls(meta["family"], meta["space"], tensors["latent"], noise, float(meta.get("loss", "nan")),
                   int(meta.get("steps", 0)), json.loads(meta.get("info", "{}")))


def check_compatible(projection: Projection, generator: nn.Module) -> None:
    """Raise ValueError (one line) when ``projection`` was not made for a model shaped like ``generator``."""
    config = generator.config
    if projection.family != config.family:
        raise ValueError(f"this latent belongs to a {projection.family} model, not {config.family}")
    dim = config.latent_dim if projection.space == "z" else config.w_dim
    expected = {"z": (1, dim), "w": (1, dim), "w+": (1, getattr(generator, "num_ws", 0), dim)}[projection.space]
    if tuple(projection.latent.shape) != expected:
        raise ValueError(f"latent of shape {tuple(projection.latent.shape)} does not fit this model "
                         f"(expects {expected} for {projection.space})")
    if projection.space != "z" and [tuple(n.shape[-2:]) for n in projection.noise] != \
            [(r, r) for r in config.resolutions for _ in range(2)]:
        raise ValueError("the latent's noise maps do not fit this model's resolution")


@dataclass
class ProjectionStep:
    """One optimiser step: ``image`` is the current reconstruction ``[1, 3, R, R]`` (detached)."""

    step: int
    steps: int
    loss: float
    image: torch.Tensor


def _learning_rate(t: float, options: ProjectionOptions) -> float:
    ramp = min(1.0, (1.0 - t) / options.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return options.initial_lr * ramp * min(1.0, t / options.lr_rampup)


def _noise_penalty(noise: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map with its 1-px shifts, at every scale down to 8 px."""
    total = noise[0].new_zeros(())
    for n in noise:
        while True:
            total = total + (n * torch.roll(n, 1, dims=3)).mean() ** 2 + (n * torch.roll(n, 1, dims=2)).mean() ** 2
            if n.shape[-1] <= 8:
                break
            n = torch.nn.functional.avg_pool2d(n, 2)
    return total


def _resolve_space(generator: nn.Module, space: str | None) -> str:
    if not is_stylegan(generator):
        if space not in (None, "z"):
            raise ValueError(f"ProGAN has no W space: project into z, not {space}")
        return "z"
    if space == "z":
        raise ValueError("StyleGAN-lite projects into w or w+ (z cannot reach most images)")
    return space or "w"


def projection_steps(generator: nn.Module, target: torch.Tensor, options: ProjectionOptions = ProjectionOptions(),
                     *, result: list[Projection] | None = None) -> Iterator[ProjectionStep]:
    """Run the projector on ``target [3, R, R]`` (or ``[1, 3, R, R]``) in [-1, 1], yielding every step.

    When the loop ends, the ``Projection`` is appended to ``result`` (if given), so a caller can
    stream steps and still get the result. The generator's weights are never changed.
    """
    config = generator.config
    target = target.reshape(1, *target.shape[-3:]).float().to(model_device(generator))
    if tuple(target.shape[1:]) != (config.image_channels, config.resolution, config.resolution):
        raise ValueError(f"target must be {config.resolution}x{config.resolution} RGB, got {tuple(target.shape)}")
    space = _resolve_space(generator, options.space)
    device = target.device
    distance = make_distance(options.loss, device=device)
    rng = torch.Generator("cpu").manual_seed(options.seed)
    with torch.inference_mode(False), torch.enable_grad():
        yield from _optimise(generator, target, options, space, distance, rng, result)


def _start(generator: nn.Module, target: torch.Tensor, options: ProjectionOptions, space: str, distance,
           rng: torch.Generator) -> tuple[torch.Tensor, float]:
    """Initial latent and its scale (w_std, or the z radius)."""
    device = target.device
    dim = generator.config.latent_dim
    if space == "z":  # best of a few random z: the z sphere has no mean to start from
        z = torch.randn(options.z_candidates, dim, generator=rng).to(device)
        with torch.no_grad():
            scores = torch.stack([distance(generator(z[i:i + 1]), target) for i in range(len(z))])
        return z[int(scores.argmin())].unsqueeze(0).clone(), math.sqrt(dim)
    with torch.no_grad():
        z = torch.randn(options.w_avg_samples, dim, generator=rng).to(device)
        w = generator.mapping(z)                                             # [S, w_dim]
        w_avg = w.mean(0, keepdim=True)                                      # [1, w_dim]
        w_std = float(((w - w_avg).square().sum() / len(w)).sqrt())
    latent = w_avg if space == "w" else generator.broadcast(w_avg)
    return latent.clone(), w_std


def _optimise(generator, target, options, space, distance, rng, result) -> Iterator[ProjectionStep]:
    stylegan = space != "z"
    latent, scale = _start(generator, target, options, space, distance, rng)
    latent.requires_grad_(True)
    noise = generator.synthesis.make_noise(1, generator=rng) if stylegan else []
    noise = [n.to(target.device).requires_grad_(True) for n in noise]
    optimizer = torch.optim.Adam([latent, *noise], betas=(0.9, 0.999), lr=options.initial_lr)
    loss_value = float("nan")
    for step in range(options.steps):
        t = step / options.steps
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(t, options)
        w_noise_std = scale * options.initial_noise_factor * max(0.0, 1.0 - t / options.noise_ramp) ** 2
        jitter = torch.randn(latent.shape, generator=rng).to(latent.device) * w_noise_std
        if stylegan:
            ws = latent + jitter
            ws = generator.broadcast(ws) if space == "w" else ws
            image = generator.synthesis(ws, noise=noise)
        else:
            image = generator(latent + jitter / math.sqrt(latent.shape[1]))
        loss = distance(image, target)
        total = loss + options.noise_weight * _noise_penalty(noise) if noise else loss
        optimizer.zero_grad(set_to_none=True)
        # gradients for the latent and noise only: the weights get none, so concurrent projections
        # (the app serves several visitors) share one generator safely
        total.backward(inputs=[latent, *noise])
        optimizer.step()
        with torch.no_grad():
            for n in noise:  # keep the maps unit Gaussian-like: they must not carry the image
                n -= n.mean()
                n *= n.square().mean().rsqrt()
            if not stylegan:
                latent *= scale / latent.norm().clamp_min(1e-8)
        loss_value = float(loss.detach())
        yield ProjectionStep(step + 1, options.steps, loss_value, image.detach())
    if result is not None:
        result.append(Projection(generator.config.family, space, latent.detach().cpu(),
                                 [n.detach().cpu() for n in noise], loss_value, options.steps,
                                 {"loss_name": options.loss, "seed": options.seed}))


def project(generator: nn.Module, target: torch.Tensor, options: ProjectionOptions = ProjectionOptions(), *,
            progress: Callable[[ProjectionStep], None] | None = None) -> Projection:
    """Run the whole projection and return the ``Projection``; ``progress`` sees every step."""
    result: list[Projection] = []
    for state in projection_steps(generator, target, options, result=result):
        if progress is not None:
            progress(state)
    return result[0]


def image_to_target(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``[R, R, 3]`` -> float ``[3, R, R]`` in [-1, 1] (the inverse of ``to_uint8`` up to rounding)."""
    return (torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float() - 128.0) / 127.5


def reconstruction_pixels(image: torch.Tensor) -> np.ndarray:
    """``[1, 3, R, R]`` -> uint8 ``[R, R, 3]``."""
    return to_uint8(image)[0]
