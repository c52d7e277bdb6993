"""Model configuration for ProGAN (Karras et al. 2018) as frozen, validated dataclasses.

Channel counts follow ProGAN table 2 / appendix A: ``min(channel_base / resolution, channel_max)``
with ``channel_base = 16384`` and ``channel_max = 512`` gives 512 feature maps up to 32x32, then
256, 128, 64, 32, 16 at 64 ... 1024. ``Family`` is the small surface both model families share, so
training, export, the app and the metrics treat them alike.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

__all__ = ["ProGANConfig", "PRESETS", "Family", "config_from_dict", "config_to_dict"]


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


@dataclass(frozen=True)
class ProGANConfig:
    """Architecture of a ProGAN generator/discriminator pair."""

    family: ClassVar[str] = "progan"

    resolution: int = 1024            # output side in pixels; a power of two >= 4
    latent_dim: int = 512             # size of z (ProGAN: 512, on the unit hypersphere after PixelNorm)
    channel_base: int = 16384         # feature maps at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512            # cap on feature maps
    image_channels: int = 3           # RGB
    mbstd_group_size: int = 4         # minibatch-stddev group (ProGAN section 3)
    mbstd_num_features: int = 1       # minibatch-stddev feature maps appended
    use_pixel_norm: bool = True       # generator pixel norm (ProGAN section 4.2)
    class_names: tuple[str, ...] = ()  # conditional model: one name per class (progan.conditioning); () = unconditional

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))  # a JSON list loads as a tuple
        if any(not isinstance(c, str) or not c for c in self.class_names) or \
                len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be distinct non-empty strings, got {list(self.class_names)}")
        if not _is_power_of_two(self.resolution) or self.resolution < 4:
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        for name in ("latent_dim", "channel_base", "channel_max", "image_channels",
                     "mbstd_group_size", "mbstd_num_features"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for res in self.resolutions:
            if self.channels(res) % self.mbstd_num_features:
                raise ValueError("mbstd_num_features must divide every channel count")

    @property
    def num_classes(self) -> int:
        """0 for an unconditional model."""
        return len(self.class_names)

    @property
    def num_stages(self) -> int:
        """Number of resolutions 4, 8, ..., resolution."""
        return int(math.log2(self.resolution)) - 1

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(4 * 2**stage for stage in range(self.num_stages))

    def channels(self, resolution: int) -> int:
        return max(1, min(self.channel_base // resolution, self.channel_max))

    def stage_of(self, resolution: int) -> int:
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not one of {self.resolutions}")
        return self.resolutions.index(resolution)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(config_cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config, refusing unknown keys with one clear message (validation runs as usual)."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} fields: {', '.join(unknown)}")
    return config_cls(**values)


PRESETS: dict[str, ProGANConfig] = {
    # tests: every stage in milliseconds on CPU
    "tiny": ProGANConfig(resolution=16, latent_dim=16, channel_base=128, channel_max=16),
    # CPU-trainable demos (the bundled weights use demo-32)
    "demo-32": ProGANConfig(resolution=32, latent_dim=64, channel_base=1024, channel_max=64),
    "small-32": ProGANConfig(resolution=32, latent_dim=128, channel_base=2048, channel_max=128),
    "small-64": ProGANConfig(resolution=64, latent_dim=128, channel_base=4096, channel_max=128),
    # the CPU recipe for 64x64 (README): 64 maps up to 16x16, then 32 and 16; ~12x small-64's speed
    "demo-64": ProGANConfig(resolution=64, latent_dim=128, channel_base=1024, channel_max=64),
    # the second 64x64 campaign (issue 24): twice demo-64's widths, 32 maps at 64 px, 64 at 32, 128 below
    "wide-64": ProGANConfig(resolution=64, latent_dim=128, channel_base=2048, channel_max=128),
    # scripts/compare_recipes.py: demo-64's networks stopped at 32 px (where the campaign collapsed)
    "recipe-32": ProGANConfig(resolution=32, latent_dim=128, channel_base=1024, channel_max=64),
    # one-GPU sizes with the paper's channel formula
    "paper-128": ProGANConfig(resolution=128),
    "paper-256": ProGANConfig(resolution=256),
    # ProGAN table 2 (CelebA-HQ 1024): 23.1M parameters in G and in D
    "paper-1024": ProGANConfig(resolution=1024),
}


@dataclass(frozen=True)
class Family:
    """What train.py, export, the app and the metrics need to know about a model family."""

    name: str
    config_cls: type
    generator_cls: type
    discriminator_cls: type
    presets: Mapping[str, Any]
    default_loss: str                 # "wgan_gp" (ProGAN) or "logistic_r1" (StyleGAN)

    def preset(self, name: str) -> Any:
        if name not in self.presets:
            raise ValueError(f"unknown {self.name} preset {name!r}; choose from {', '.join(self.presets)}")
        return self.presets[name]
