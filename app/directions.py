"""Semantic directions without labels: SeFa (Shen & Zhou, CVPR 2021, "Closed-Form Factorization of
Latent Semantics in GANs"), section 3.

Section 3.1 (eq. 3-4): the first step from the latent code into the generator is an affine map
``y = A z + b``; moving the code to ``z + alpha * n`` moves ``y`` by ``alpha * A n``, whatever z is.
Section 3.2 (eq. 5-6): the directions that move ``y`` the most are
``argmax_{n^T n = 1} ||A n||^2``, and for k of them (with orthogonality) the solution is the top-k
eigenvectors of ``A^T A``; the eigenvalue is ``||A n||^2``, how much the direction moves ``y``.

What A is here (section 3.2 "Applications"):

- StyleGAN-lite: the per-layer style affines ``A_l: w -> (y_s, y_b)`` of ``AdaIN`` (StyleGAN section
  2), concatenated over the chosen layers ``a..b`` (SeFa's layer-wise editing): ``A = [A_a; ...; A_b]``,
  ``[2 * sum(C_l), w_dim]``, with the *effective* weights, i.e. the stored weight times its
  equalized-learning-rate scale (ProGAN section 4.1). Edits move w on those layers only.
- ProGAN: the first dense layer on z (``blocks[0].dense``), ``[16 C, latent_dim]``; edits move z.

The official code (genforce/sefa) additionally normalises each row of A to unit length; we follow
the paper's equation and use A as the network applies it.

Strengths are in units of ``sigma``: the standard deviation of ``<w, n>`` over 10,000 mapped z
(StyleGAN-lite), or 1 for ProGAN, where z ~ N(0, I) makes ``<z, n>`` a unit normal. So a strength
of 3 is a "3-sigma" move in every model.

``python -m app.directions --weights W --layers 0-3 --k 10 --out dirs.safetensors`` writes the
directions, eigenvalues, sigmas, layer range and the digest of the weights they came from.
The app and ``app.generate edit`` use ``cached_directions``: computed once per (weights, layers, k)
and kept under ``$GAN_STUDIO_CACHE/directions``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .keys import Key, key_latents, key_noise, key_styles
from .sampling import is_stylegan, model_device, to_uint8

__all__ = ["Directions", "parse_layers", "num_layers", "projection_weight", "factorize", "weights_digest",
           "compute_directions", "cached_directions", "edit_latent", "edit_images", "main"]

_FORMAT = "gan-studio-sefa"
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_SIGMA_SAMPLES = 10_000


def num_layers(generator: nn.Module) -> int:
    """Layers a direction can act on: the style layers (StyleGAN-lite) or the one dense layer (ProGAN)."""
    return generator.num_ws if is_stylegan(generator) else 1


def parse_layers(text: str | None, generator: nn.Module) -> tuple[int, int]:
    """``"0-3"``, ``"2"`` or ``"all"``/empty -> inclusive ``(first, last)``; raises ValueError (one line)."""
    count = num_layers(generator)
    text = "all" if text is None else str(text).strip().lower()
    if text in ("", "all"):
        return 0, count - 1
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f'cannot read layer range {text!r}: write e.g. "0-3", "2" or "all"')
    first, last = int(match.group(1)), int(match.group(2) if match.group(2) is not None else match.group(1))
    if last < first:
        raise ValueError(f"layer range {text!r} runs backwards; write {last}-{first}")
    if last >= count:
        what = "style layers 0" if is_stylegan(generator) else "one projection layer (ProGAN: z -> 4x4), layer 0"
        raise ValueError(f"layer range {text!r} is outside this model: it has {what}" +
                         (f"-{count - 1}" if is_stylegan(generator) else ""))
    return first, last


def projection_weight(generator: nn.Module, layers: tuple[int, int]) -> torch.Tensor:
    """``A [rows, latent dim]`` (float64, CPU): the effective weights from the latent to the chosen layers."""
    if is_stylegan(generator):
        affines = [generator.synthesis.layers[i].adain.affine for i in range(layers[0], layers[1] + 1)]
    else:
        affines = [generator.blocks[0].dense]
    return torch.cat([a.weight.detach().double().cpu() * a.weight_scale for a in affines])  # [rows, dim]


def factorize(weight: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` eigenvectors ``[k, dim]`` (rows, orthonormal) and eigenvalues ``[k]`` of ``A^T A`` (eq. 6).

    Largest eigenvalue first; each vector's sign is fixed so its largest-magnitude entry is positive,
    so the same weights always give the same file.
    """
    dim = weight.shape[1]
    if not 1 <= k <= dim:
        raise ValueError(f"k must be between 1 and {dim} (the latent size), got {k}")
    values, vectors = torch.linalg.eigh(weight.T.double() @ weight.double())  # ascending
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k].T          # [k], [k, dim]
    pivot = vectors.abs().argmax(dim=1)
    signs = torch.sign(vectors[torch.arange(k), pivot])
    return vectors * signs[:, None], values.clamp_min(0)


def weights_digest(generator: nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted({**dict(generator.named_parameters()), **dict(generator.named_buffers())}.items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class Directions:
    """SeFa directions of one model: ``vectors [k, dim]`` in w (StyleGAN-lite) or z (ProGAN)."""

    vectors: torch.Tensor
    eigenvalues: torch.Tensor
    sigma: torch.Tensor          # [k]: std of the latent's projection on each direction
    layers: tuple[int, int]
    family: str
    weights_sha256: str

    @property
    def k(self) -> int:
        return self.vectors.shape[0]

    def save(self, path: str | os.PathLike) -> Path:
        """Write safetensors atomically (a temp file renamed into place)."""
        from safetensors.torch import save

        from progan.hub.export import atomic_write_bytes

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"directions": self.vectors.float().contiguous(), "eigenvalues": self.eigenvalues.double().contiguous(),
                   "sigma": self.sigma.float().contiguous()}
        meta = {"format": _FORMAT, "family": self.family, "layers": f"{self.layers[0]}-{self.layers[1]}",
                "k": str(self.k), "weights_sha256": self.weights_sha256,
                "paper": "Shen & Zhou, CVPR 2021, section 3.2 (top-k eigenvectors of A^T A)"}
        atomic_write_bytes(path, save(tensors, metadata=meta))  # temp file + rename: never half a file
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Directions":
        """Read a file written by ``save``; raises ValueError (one line) for anything else."""
        from progan.hub.export import read_safetensors

        meta, tensors = read_safetensors(path, what="directions file")
        if meta.get("format") != _FORMAT or {"directions", "eigenvalues", "sigma"} - set(tensors):
            raise ValueError(f"{path}: not a directions file written by app.directions")
        first, last = (int(x) for x in meta["layers"].split("-"))
        return cls(tensors["directions"], tensors["eigenvalues"], tensors["sigma"], (first, last), meta["family"],
                   meta["weights_sha256"])

    def check_fits(self, generator: nn.Module, digest: str | None = None) -> None:
        """Raise ValueError (one line) when these directions were not computed from ``generator``."""
        if self.family != generator.config.family:
            raise ValueError(f"these directions belong to a {self.family} model, not {generator.config.family}")
        if digest is not None and digest != self.weights_sha256:
            raise ValueError(f"these directions were computed from other weights (sha256 {self.weights_sha256[:12]}..., "
                             f"this model {digest[:12]}...)")


@torch.no_grad()
def _sigmas(generator: nn.Module, vectors: torch.Tensor) -> torch.Tensor:
    if not is_stylegan(generator):
        return torch.ones(vectors.shape[0])  # z ~ N(0, I): <z, n> is a unit normal for any unit n
    rng = torch.Generator("cpu").manual_seed(0)
    z = torch.randn(_SIGMA_SAMPLES, generator.config.latent_dim, generator=rng).to(model_device(generator))
    w = torch.cat([generator.mapping(chunk) for chunk in z.split(1000)]).double().cpu()  # [S, w_dim]
    return (w @ vectors.double().T).std(dim=0).float()


def compute_directions(generator: nn.Module, *, layers: str | tuple[int, int] | None = None, k: int = 10) -> Directions:
    """SeFa on ``generator`` over ``layers`` (text as ``parse_layers`` or a tuple); raises ValueError (one line)."""
    span = parse_layers(layers, generator) if not isinstance(layers, tuple) else parse_layers(f"{layers[0]}-{layers[1]}", generator)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be a whole number, got {k!r}")
    vectors, values = factorize(projection_weight(generator, span), int(k))
    return Directions(vectors.float(), values, _sigmas(generator, vectors.float()), span, generator.config.family,
                      weights_digest(generator))


def cached_directions(generator: nn.Module, *, layers: str | tuple[int, int] | None = None, k: int = 10,
                      cache_dir: str | os.PathLike | None = None) -> Directions:
    """``compute_directions``, read from / written to ``cache_dir`` (default ``$GAN_STUDIO_CACHE/directions``)
    keyed by the weights' sha256, the layer range and k. A corrupt or foreign cache file is recomputed."""
    from progan.hub import cache_root

    span = parse_layers(layers if not isinstance(layers, tuple) else f"{layers[0]}-{layers[1]}", generator)
    digest = _digest_of(generator)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "directions"
    path = folder / f"{digest[:24]}-layers{span[0]}-{span[1]}-k{k}.safetensors"
    if path.is_file():
        try:
            found = Directions.load(path)
            if found.weights_sha256 == digest and found.layers == span and found.k == k:
                return found
        except ValueError:
            pass  # recompute and overwrite
    directions = compute_directions(generator, layers=span, k=k)
    directions.save(path)
    return directions


def _digest_of(generator: nn.Module) -> str:
    """The digest, remembered on the module (weights of a loaded model do not change in the app)."""
    cached = getattr(generator, "_sefa_digest", None)
    if cached is None:
        cached = weights_digest(generator)
        generator._sefa_digest = cached
    return cached


def edit_latent(latent: torch.Tensor, directions: Directions, strengths: Sequence[float], *,
                layers: tuple[int, int] | None = None) -> torch.Tensor:
    """Move ``latent`` by ``sum_i strengths[i] * sigma_i * n_i``.

    ``latent`` is ws ``[N, num_ws, w_dim]`` (StyleGAN-lite; only layers ``layers`` move, default the
    directions' own range) or z ``[N, latent_dim]`` (ProGAN). ``strengths`` may be shorter than k.
    """
    if len(strengths) > directions.k:
        raise ValueError(f"{len(strengths)} strengths for {directions.k} directions")
    if not strengths:
        return latent
    s = torch.tensor([float(x) for x in strengths], dtype=torch.float32)
    step = (s * directions.sigma[: len(s)]) @ directions.vectors[: len(s)]  # [dim]
    step = step.to(latent.device, latent.dtype)
    if latent.ndim == 2:
        return latent + step
    first, last = layers or directions.layers
    out = latent.clone()
    out[:, first:last + 1] += step
    return out


@torch.inference_mode()
def edit_images(generator: nn.Module, key: Key, directions: Directions, strengths: Sequence[Sequence[float]], *,
                psi: float = 1.0, noise: str = "fixed") -> np.ndarray:
    """One image ``[R, R, 3]`` uint8 per row of ``strengths`` for the seed or projection ``key``: ``[M, R, R, 3]``."""
    directions.check_fits(generator)
    if is_stylegan(generator):
        ws = key_styles(generator, [key], psi=psi)                          # [1, num_ws, w_dim]
        noise_maps = key_noise(generator, [key], noise)                     # same noise for every edit
        latents = torch.cat([edit_latent(ws, directions, row) for row in strengths])
        images = generator.synthesis(latents, noise=[n.expand(len(strengths), -1, -1, -1) for n in noise_maps])
    else:
        z = key_latents(generator, [key])                                   # [1, latent_dim]
        images = generator(torch.cat([edit_latent(z, directions, row) for row in strengths]))
    return to_uint8(images)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.directions", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, metavar="PATH|URL|hf://org/repo",
                        help="generator (default: the bundled StyleGAN-lite weights, else ProGAN)")
    parser.add_argument("--layers", default="all", help='layer range "0-3", "2" or "all" (ProGAN: 0 only)')
    parser.add_argument("--k", type=int, default=10, help="number of directions (at most the latent size; default: 10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write here (.safetensors); default: only the cache under $GAN_STUDIO_CACHE/directions")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.out is not None and args.out.suffix != ".safetensors":
        print(f"error: --out must end in .safetensors, got {str(args.out)!r}", file=sys.stderr)
        return 2
    try:
        from families import load_generator

        from .models import launch_sources

        source = args.weights or next(iter(launch_sources(None).values()))
        generator = load_generator(source, progress=False)
        directions = cached_directions(generator, layers=args.layers, k=args.k)
        if args.out is not None:
            directions.save(args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    top = ", ".join(f"{v:.3g}" for v in directions.eigenvalues[:5].tolist())
    where = f"wrote {args.out}" if args.out is not None else "cached"
    print(f"{where}: {directions.k} SeFa directions of {source}, layers {directions.layers[0]}-{directions.layers[1]}, "
          f"eigenvalues {top}{', ...' if directions.k > 5 else ''}; weights sha256 {directions.weights_sha256[:12]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
