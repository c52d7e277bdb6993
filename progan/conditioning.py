"""Class conditioning shared by both families: the class embedding of G and the projection head of D.

Generator (as NVlabs stylegan2-ada ``MappingNetwork``: ``embed``, ``normalize_2nd_moment``, concat):
the class label, one-hot, goes through an equalized linear layer; the embedding is normalized to unit
RMS like z and concatenated with the normalized z. StyleGAN-lite feeds the concatenation to its mapping
MLP, ProGAN to its first dense layer, so both see ``[z, e(y)]`` where they used to see ``z``.

Discriminator: the *projection discriminator* (Miyato & Koyama, ICLR 2018, section 3, eq. 3):
``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` with ``phi(x)`` the last hidden features and ``psi``
the unconditional linear output; stylegan2-ada's ``cmap`` is the same inner product, scaled by
``1 / sqrt(C)`` as we do, so the projection term starts at the scale of the unconditional score.

Labels are int64 class indices ``[N]`` everywhere in the API (names are turned into indices by
``class_index``). The one-hot is built as ``labels[:, None] == arange(K)``, which exports to ONNX as
a plain comparison.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .layers import EqualizedLinear, PixelNorm

__all__ = ["ClassEmbedding", "ProjectionHead", "ClassBound", "bind_class", "class_index", "check_labels"]


def class_index(class_names: Sequence[str], name: str | int) -> int:
    """A class name (or an index given as an int or a digit string) -> its index; one-line error listing
    the valid names otherwise."""
    if not class_names:
        raise ValueError("this model is unconditional: it takes no class")
    if name in class_names:
        return list(class_names).index(name)  # type: ignore[arg-type]
    text = str(name)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(class_names):
        return int(text)
    raise ValueError(f"unknown class {name!r}; choose from {', '.join(repr(c) for c in class_names)}")


def check_labels(num_classes: int, labels: torch.Tensor | None, batch_size: int) -> None:
    """Conditional networks need labels ``[N]``, unconditional ones none (shapes only: no host sync)."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError("this network is unconditional (no classes) but labels were given")
        return
    if labels is None:
        raise ValueError(f"this network is conditional on {num_classes} classes: pass labels [N]")
    if labels.dim() != 1 or labels.shape[0] != batch_size or labels.is_floating_point():
        raise ValueError(f"labels must be integer class indices of shape [{batch_size}], "
                         f"got {labels.dtype} {tuple(labels.shape)}")


class ClassEmbedding(nn.Module):
    """``labels [N] (int64) -> [N, features]``: an equalized linear layer on the one-hot label.

    ``normalize=True`` returns it scaled to unit RMS (the generator's input); the discriminator's
    projection uses the raw embedding.
    """

    def __init__(self, num_classes: int, features: int, *, bias: bool = True, normalize: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = EqualizedLinear(num_classes, features, gain=1.0, bias=bias)
        self.norm = PixelNorm() if normalize else nn.Identity()
        self.register_buffer("classes", torch.arange(num_classes), persistent=False)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        one_hot = (labels.reshape(-1, 1) == self.classes).to(self.linear.weight.dtype)   # [N, K]
        return self.norm(self.linear(one_hot))                                           # [N, features]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"


class ProjectionHead(nn.Module):
    """``<embed(y), phi(x)> / sqrt(C)``: the class-dependent term of the projection discriminator.

    ``features [N, C]``, ``labels [N]`` -> ``[N, 1]`` (added to the unconditional score).
    """

    def __init__(self, num_classes: int, channels: int) -> None:
        super().__init__()
        self.embed = ClassEmbedding(num_classes, channels, bias=False)
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embedding = self.embed(labels).to(features.dtype)                                # [N, C]
        return (embedding * features).sum(dim=1, keepdim=True) * self.scale              # [N, 1]

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"


class ClassBound(nn.Module):
    """A conditional generator with its class fixed: ``forward(z, **kw)`` and (StyleGAN-lite)
    ``mapping(z)`` take no labels, so code written for unconditional generators (the app's sampling,
    interpolation, mixing and projection, the metrics) runs on one class unchanged. Every other
    attribute (``config``, ``synthesis``, ``truncate``, ``w_avg``, ...) is the wrapped generator's."""

    def __init__(self, generator: nn.Module, label: int) -> None:
        super().__init__()
        if not 0 <= label < generator.config.num_classes:
            raise ValueError(f"class index must be in [0, {generator.config.num_classes}), got {label}")
        self.generator = generator
        self.label = int(label)

    def _labels(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0],), self.label, dtype=torch.long, device=z.device)

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.generator(z, labels=self._labels(z), **kwargs)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator.map(z, self._labels(z))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["generator"], name)

    def extra_repr(self) -> str:
        return f"label={self.label} ({self.generator.config.class_names[self.label]!r})"


def bind_class(generator: nn.Module, name: str | int | None) -> nn.Module:
    """``generator`` with class ``name`` fixed (a name, or an index); an unconditional generator and
    ``name=None`` pass through, except that a class for an unconditional model is refused."""
    names = generator.config.class_names
    if name is None or name == "":
        return generator
    return ClassBound(generator, class_index(names, name))
