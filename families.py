"""The fixed mapping from family name to model family, and "load whatever this file holds".

This module sits above both packages: ``progan`` never imports ``stylegan_lite``, so the code that
must pick between them (train.py, the app, the metrics CLI) comes through here.
Run ``python -m families`` to print the parameter counts of every preset.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

import progan
import stylegan_lite
from progan.config import Family
from progan.hub.export import PretrainedError, read_metadata

__all__ = ["FAMILIES", "get_family", "load_generator", "count_parameters", "parameter_table"]

FAMILIES: dict[str, Family] = {"progan": progan.FAMILY, "stylegan_lite": stylegan_lite.FAMILY}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def load_generator(source: str | os.PathLike, *, sha256: str | None = None,
                   device: str | torch.device = "cpu", **resolve_options: Any) -> nn.Module:
    """Load the generator in ``source`` (dir, file, URL, ``hf://``), whichever family it is."""
    from progan.hub import resolve_weights

    path = resolve_weights(source, sha256=sha256, **resolve_options)
    family = read_metadata(path)["family"]
    if family not in FAMILIES:
        raise PretrainedError(f"{path}: unknown model family {family!r}")
    return FAMILIES[family].generator_cls.from_pretrained(path, device=device)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_table() -> str:
    """Markdown table of trainable parameters for every family and preset (built on the meta device)."""
    rows = ["| family | preset | resolution | generator | discriminator |", "|---|---|---:|---:|---:|"]
    for family in FAMILIES.values():
        for name, config in family.presets.items():
            with torch.device("meta"):  # no memory, no init cost: only shapes are needed
                g, d = family.generator_cls(config), family.discriminator_cls(config)
            rows.append(f"| {family.name} | {name} | {config.resolution} | "
                        f"{count_parameters(g) / 1e6:.2f}M | {count_parameters(d) / 1e6:.2f}M |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(parameter_table())
