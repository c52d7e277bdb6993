"""StyleGAN-lite configuration (Karras et al., CVPR 2019).

Extends ``ProGANConfig`` (same channel formula, same discriminator fields) with the style-based
generator's mapping network (section 2: 8 layers, 512-d z and w, learning rate x0.01 per appendix C),
the low-pass filter on resampling (section 2) and the ``w_avg`` tracking rate (truncation, section 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from progan.config import ProGANConfig

__all__ = ["StyleGANConfig", "PRESETS", "BLUR_PADDINGS"]

BLUR_PADDINGS = ("replicate", "zero")  # = progan.layers.Blur.PADDINGS (the config imports no torch)


@dataclass(frozen=True)
class StyleGANConfig(ProGANConfig):
    """Architecture of a StyleGAN-lite generator (the discriminator is ProGAN's)."""

    family: ClassVar[str] = "stylegan_lite"

    w_dim: int = 512                  # intermediate latent size (section 2)
    mapping_layers: int = 8           # MLP depth of f: Z -> W (section 2)
    mapping_lr_multiplier: float = 0.01  # appendix C: mapping network learns 100x slower
    blur: bool = True                 # [1 2 1] low-pass after upsampling (section 2)
    # what the blur sees beyond the border: "replicate" (edge pixels; the bundled weights and every
    # export before this field, which load as replicate) or "zero" (NVIDIA's blur2d, 'SAME' zero
    # padding; the one torch.compile can train on CPU, see progan.layers.Blur)
    blur_padding: str = "replicate"
    w_avg_beta: float = 0.995         # EMA rate of the tracked mean w used by truncation

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.w_dim < 1 or self.mapping_layers < 1:
            raise ValueError("w_dim and mapping_layers must be positive")
        if not 0.0 < self.mapping_lr_multiplier <= 1.0:
            raise ValueError(f"mapping_lr_multiplier must be in (0, 1], got {self.mapping_lr_multiplier}")
        if self.blur_padding not in BLUR_PADDINGS:
            raise ValueError(f"blur_padding must be one of {BLUR_PADDINGS}, got {self.blur_padding!r}")
        if not 0.0 <= self.w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must be in [0, 1), got {self.w_avg_beta}")

    @property
    def num_ws(self) -> int:
        """Style inputs: two AdaIN layers per resolution (section 2, figure 1b)."""
        return 2 * self.num_stages


PRESETS: dict[str, StyleGANConfig] = {
    "tiny": StyleGANConfig(resolution=16, latent_dim=16, w_dim=16, mapping_layers=2,
                           channel_base=128, channel_max=16),
    "demo-32": StyleGANConfig(resolution=32, latent_dim=64, w_dim=64, mapping_layers=4,
                              channel_base=1024, channel_max=64),
    "small-32": StyleGANConfig(resolution=32, latent_dim=128, w_dim=128, mapping_layers=4,
                               channel_base=2048, channel_max=128),
    "small-64": StyleGANConfig(resolution=64, latent_dim=128, w_dim=128, mapping_layers=4,
                               channel_base=4096, channel_max=128),
    "demo-64": StyleGANConfig(resolution=64, latent_dim=128, w_dim=128, mapping_layers=4,
                              channel_base=1024, channel_max=64),
    # the second 64x64 campaign (issue 24): twice demo-64's widths, 32 maps at 64 px, 64 at 32, 128 below
    "wide-64": StyleGANConfig(resolution=64, latent_dim=128, w_dim=128, mapping_layers=4,
                              channel_base=2048, channel_max=128),
    # scripts/compare_recipes.py: demo-64's networks stopped at 32 px (where the campaign collapsed)
    "recipe-32": StyleGANConfig(resolution=32, latent_dim=128, w_dim=128, mapping_layers=4,
                                channel_base=1024, channel_max=64),
    "paper-128": StyleGANConfig(resolution=128),
    "paper-256": StyleGANConfig(resolution=256),
    # StyleGAN section 2: 26.2M trainable parameters at 1024x1024
    "paper-1024": StyleGANConfig(resolution=1024),
}
