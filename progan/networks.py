"""ProGAN generator and discriminator (Karras et al. 2018, section 2 and appendix A, table 2).

Every resolution's blocks are built once; ``forward(..., stage, alpha)`` picks the active resolution
``4 * 2**stage`` and the fade-in weight of its newest block (section 2, figure 2): during a
transition the output is ``(1 - alpha) * upsample(to_rgb_prev(x_prev)) + alpha * to_rgb(x)`` in the
generator, and the mirror image in the discriminator. Since the parameter set never changes,
optimizers and ``accelerator.prepare`` are set up once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import ClassEmbedding, ProjectionHead, check_labels
from .config import ProGANConfig
from .hub.export import PretrainedMixin
from .minibatch_discrimination import MinibatchDiscrimination
from .layers import (
    LEAKY_SLOPE,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    clamp_fp16,
    downsample2x,
    run_block,
    upsample2x,
)

__all__ = ["Generator", "Discriminator", "resolve_stage"]


def resolve_stage(config: ProGANConfig, stage: int | None) -> int:
    """``None`` means the full resolution; anything else must name an existing stage."""
    if stage is None:
        return config.num_stages - 1
    if not 0 <= stage < config.num_stages:
        raise ValueError(f"stage must be in [0, {config.num_stages - 1}], got {stage}")
    return stage


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return clamp_fp16(F.leaky_relu(x, LEAKY_SLOPE))  # the clamp only acts on fp16 (layers.clamp_fp16)


class ConvLayer(nn.Module):
    """3x3 equalized conv -> leaky ReLU -> (optional) pixel norm. ``[N, Cin, H, W] -> [N, Cout, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, *, pixel_norm: bool) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_lrelu(self.conv(x)))


class GeneratorInputBlock(nn.Module):
    """Latent ``[N, latent_dim]`` -> ``[N, C, 4, 4]``: a dense '4x4 conv' then a 3x3 conv (table 2)."""

    def __init__(self, latent_dim: int, channels: int, *, pixel_norm: bool) -> None:
        super().__init__()
        self.channels = channels
        # gain sqrt(2)/4 as the reference implementation: the dense layer stands for a 4x4 conv on 1x1
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=2**0.5 / 4)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()
        self.conv = ConvLayer(channels, channels, pixel_norm=pixel_norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(-1, self.channels, 4, 4)                   # [N, C, 4, 4]
        return self.conv(self.norm(_lrelu(x)))


class GeneratorBlock(nn.Module):
    """Upsample 2x (nearest) then two 3x3 convs. ``[N, Cin, H, W] -> [N, Cout, 2H, 2W]``."""

    def __init__(self, in_channels: int, out_channels: int, *, pixel_norm: bool) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, out_channels, pixel_norm=pixel_norm)
        self.conv2 = ConvLayer(out_channels, out_channels, pixel_norm=pixel_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(upsample2x(x)))


class Generator(PretrainedMixin, nn.Module):
    """ProGAN generator. ``z [N, latent_dim] -> images [N, 3, R, R]`` with ``R = 4 * 2**stage``.

    Outputs are linear (no tanh), nominally in [-1, 1]. ``alpha`` in [0, 1] fades in the newest block.
    """

    config_cls = ProGANConfig

    def __init__(self, config: ProGANConfig) -> None:
        super().__init__()
        self.config = config
        pn = config.use_pixel_norm
        res = config.resolutions
        self.input_norm = PixelNorm() if pn else nn.Identity()  # z normalised onto the hypersphere
        # conditional: [z, e(y)] into the first dense layer, e(y) at unit RMS (progan.conditioning)
        self.embed = ClassEmbedding(config.num_classes, config.latent_dim, normalize=True) if config.num_classes else None
        in_features = config.latent_dim * (2 if config.num_classes else 1)
        blocks: list[nn.Module] = [GeneratorInputBlock(in_features, config.channels(4), pixel_norm=pn)]
        for r in res[1:]:
            blocks.append(GeneratorBlock(config.channels(r // 2), config.channels(r), pixel_norm=pn))
        self.blocks = nn.ModuleList(blocks)
        # ToRGB: 1x1 conv with linear activation (gain 1), one per resolution
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(config.channels(r), config.image_channels, 1, gain=1.0) for r in res
        )

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    def forward(self, z: torch.Tensor, *, stage: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """``labels [N]`` (int64 class indices): required by a conditional G, refused by an unconditional one."""
        stage = resolve_stage(self.config, stage)
        check_labels(self.config.num_classes, labels, z.shape[0])
        res, full = self.config.resolutions, self.config.resolution
        x = self.input_norm(z)
        if self.embed is not None:
            x = torch.cat([x, self.embed(labels).to(x.dtype)], dim=1)     # [N, 2 * latent_dim]
        x = run_block(self.blocks[0], x, resolution=4, full_resolution=full)
        for s in range(1, stage):
            x = run_block(self.blocks[s], x, resolution=res[s], full_resolution=full)
        if stage == 0:
            return run_block(self.to_rgb[0], x, resolution=4, full_resolution=full)
        new = run_block(self.blocks[stage], x, resolution=res[stage], full_resolution=full)
        rgb = run_block(self.to_rgb[stage], new, resolution=res[stage], full_resolution=full)
        if alpha >= 1.0:
            return rgb
        skip = upsample2x(run_block(self.to_rgb[stage - 1], x, resolution=res[stage - 1], full_resolution=full))
        return torch.lerp(skip, rgb, alpha)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs then 2x2 average pooling. ``[N, Cin, H, W] -> [N, Cout, H/2, W/2]``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample2x(_lrelu(self.conv2(_lrelu(self.conv1(x)))))


class DiscriminatorOutputBlock(nn.Module):
    """Minibatch stddev, 3x3 conv, dense '4x4 conv', dense to one score. ``[N, C, 4, 4] -> [N, 1]``.

    With ``num_classes`` it is the projection discriminator's head (Miyato & Koyama 2018, section 3):
    ``out(phi) + <embed(y), phi> / sqrt(C)`` with ``phi`` the ``[N, C]`` features after ``dense``.
    ``minibatch_discrimination=(B, C)`` puts Salimans et al.'s minibatch discrimination (section 3.2,
    ``progan.minibatch_discrimination``) where the stddev layer was. ``forward(x, labels, True)`` also
    returns the features before the two dense layers (the 3x3 conv's activations, ``[N, C * 16]``), which
    feature matching (Salimans et al. section 3.1) compares.
    """

    def __init__(self, channels: int, *, group_size: int, num_features: int, num_classes: int = 0,
                 minibatch_discrimination: tuple[int, int] | None = None) -> None:
        super().__init__()
        if minibatch_discrimination is None:
            self.mbstd = MinibatchStdDev(group_size=group_size, num_features=num_features)
        else:  # its T is saved as blocks.0.minibatch_discrimination.weight
            kernels, dim = minibatch_discrimination
            self.minibatch_discrimination = MinibatchDiscrimination(channels * 16, num_kernels=kernels,
                                                                    kernel_dim=dim)
            num_features = kernels
        self.conv = EqualizedConv2d(channels + num_features, channels, 3)
        self.dense = EqualizedLinear(channels * 16, channels)
        self.out = EqualizedLinear(channels, 1, gain=1.0)
        self.projection = ProjectionHead(num_classes, channels) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch_layer = self.mbstd if "mbstd" in self._modules else self.minibatch_discrimination
        x = _lrelu(self.conv(batch_layer(x)))                             # [N, C(+F), 4, 4] -> [N, C, 4, 4]
        features = x.flatten(1)                                           # [N, C * 16]
        x = _lrelu(self.dense(features))                                  # [N, C]: phi(x)
        scores = self.out(x)                                              # [N, 1]
        if self.projection is not None:
            scores = scores + self.projection(x, labels)                  # [N, 1]
        return (scores, features) if return_features else scores


class Discriminator(nn.Module):
    """ProGAN discriminator (also StyleGAN-lite's). ``images [N, 3, R, R] -> scores [N, 1]``.

    Works for any config with ProGAN's fields, so StyleGAN-lite reuses it unchanged.
    ``minibatch_discrimination=(B, C)`` replaces minibatch stddev (a training option, ``--minibatch-
    discrimination``: D is never exported, and checkpoints record it in their train_config).
    ``forward(..., features=True)`` returns ``(scores, features [N, C * 16])``.
    """

    def __init__(self, config: ProGANConfig, *, minibatch_discrimination: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.config = config
        res = config.resolutions
        self.from_rgb = nn.ModuleList(EqualizedConv2d(config.image_channels, config.channels(r), 1) for r in res)
        blocks: list[nn.Module] = [DiscriminatorOutputBlock(
            config.channels(4), group_size=config.mbstd_group_size, num_features=config.mbstd_num_features,
            num_classes=config.num_classes, minibatch_discrimination=minibatch_discrimination)]
        for r in res[1:]:
            blocks.append(DiscriminatorBlock(config.channels(r), config.channels(r // 2)))
        self.blocks = nn.ModuleList(blocks)  # blocks[s] consumes resolution 4 * 2**s

    def forward(self, images: torch.Tensor, *, stage: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None, features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``labels [N]`` (int64 class indices): required by a conditional D, refused by an unconditional one."""
        stage = resolve_stage(self.config, stage)
        check_labels(self.config.num_classes, labels, images.shape[0])
        expected = self.config.resolutions[stage]
        if images.shape[-1] != expected or images.shape[-2] != expected:
            raise ValueError(f"stage {stage} expects {expected}x{expected} images, got {tuple(images.shape)}")
        res, full = self.config.resolutions, self.config.resolution
        x = _lrelu(run_block(self.from_rgb[stage], images, resolution=res[stage], full_resolution=full))
        if stage > 0:
            x = run_block(self.blocks[stage], x, resolution=res[stage], full_resolution=full)
            if alpha < 1.0:
                skip = run_block(self.from_rgb[stage - 1], downsample2x(images), resolution=res[stage - 1],
                                 full_resolution=full)
                x = torch.lerp(_lrelu(skip), x, alpha)
        for s in range(stage - 1, 0, -1):
            x = run_block(self.blocks[s], x, resolution=res[s], full_resolution=full)
        return run_block(self.blocks[0], x, labels, features, resolution=4, full_resolution=full)
