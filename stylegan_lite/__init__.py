"""StyleGAN-lite (Karras et al., CVPR 2019): style-based generator + ProGAN's discriminator.

Imports from ``progan``; ``progan`` never imports this package. Public surface mirrors progan:
``StyleGANConfig``, ``Generator``, ``Discriminator``, ``PRESETS``, ``FAMILY``.
"""
from progan.config import Family
from progan.networks import Discriminator  # StyleGAN v1 used ProGAN's discriminator; so do we

from .config import PRESETS, StyleGANConfig
from .networks import Generator

FAMILY = Family(
    name="stylegan_lite",
    config_cls=StyleGANConfig,
    generator_cls=Generator,
    discriminator_cls=Discriminator,
    presets=PRESETS,
    default_loss="logistic_r1",
)

__all__ = ["StyleGANConfig", "Generator", "Discriminator", "PRESETS", "FAMILY"]
