"""ProGAN (Karras et al., ICLR 2018) and the pieces both model families share.

Public surface: ``ProGANConfig``, ``Generator``, ``Discriminator``, ``PRESETS`` and ``FAMILY``.
"""
from .config import PRESETS, Family, ProGANConfig
from .networks import Discriminator, Generator

FAMILY = Family(
    name="progan",
    config_cls=ProGANConfig,
    generator_cls=Generator,
    discriminator_cls=Discriminator,
    presets=PRESETS,
    default_loss="wgan_gp",
)

__all__ = ["ProGANConfig", "Generator", "Discriminator", "PRESETS", "FAMILY", "Family"]
