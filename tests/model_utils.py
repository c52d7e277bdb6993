"""Tiny generators for the app and export tests, built the same way wherever they are needed."""
from __future__ import annotations

from pathlib import Path

import torch

from families import FAMILIES


def tiny_stylegan(seed: int = 0, w_avg_scale: float = 1.0) -> torch.nn.Module:
    """A tiny StyleGAN-lite (eval mode) whose ``w_avg`` is a random vector times ``w_avg_scale``, as
    after training (not the origin, where truncation would only scale w)."""
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(seed)
    generator = family.generator_cls(family.presets["tiny"]).eval()
    generator.w_avg.copy_(torch.randn(generator.config.w_dim) * w_avg_scale)
    return generator


def save_tiny_weights(root: Path) -> Path:
    """``root/sg`` (``tiny_stylegan()``) and ``root/pg`` (a tiny ProGAN, seed 0), exported; returns root."""
    tiny_stylegan().save_pretrained(root / "sg")
    torch.manual_seed(0)
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(root / "pg")
    return root
