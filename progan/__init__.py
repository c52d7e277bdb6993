"""ProGAN (Karras et al., ICLR 2018) and the pieces both model families share.

Public surface: ``ProGANConfig``, ``Generator``, ``Discriminator``, ``PRESETS`` and ``FAMILY``.

The names are resolved on first use (PEP 562 module ``__getattr__``): importing ``progan`` alone
imports no torch, so ``python -m progan.training.launch`` reaches its first line, which installs the
stop-signal handlers, in a fraction of a second instead of the seconds torch takes to import.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import PRESETS, Family, ProGANConfig
    from .networks import Discriminator, Generator

__all__ = ["ProGANConfig", "Generator", "Discriminator", "PRESETS", "FAMILY", "Family"]
_HOMES = {"ProGANConfig": "config", "PRESETS": "config", "Family": "config",
          "Generator": "networks", "Discriminator": "networks"}


def __getattr__(name: str) -> Any:
    if name == "FAMILY":
        from .config import PRESETS, Family, ProGANConfig
        from .networks import Discriminator, Generator

        value: Any = Family(name="progan", config_cls=ProGANConfig, generator_cls=Generator,
                            discriminator_cls=Discriminator, presets=PRESETS, default_loss="wgan_gp")
    elif name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'progan' has no attribute {name!r}")
    globals()[name] = value  # one FAMILY object for every caller
    return value
