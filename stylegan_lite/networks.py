"""StyleGAN-lite generator (Karras et al., CVPR 2019): mapping network + style-based synthesis.

Section 2 / figure 1b: a learned 4x4 constant is refined by two layers per resolution, each
``conv 3x3 -> noise (B) -> bias -> leaky ReLU -> AdaIN(w) (A)``; the first layer of the 4x4 block has
no conv. Section 3.1: *style mixing* feeds w1 to layers before a crossover point and w2 after it.
Section 3 / appendix B: *truncation* ``w' = w_avg + psi * (w - w_avg)`` on layers ``< cutoff``,
around ``w_avg``, a running mean of w tracked during training. Progressive growing with fade-in
works exactly as in ProGAN (section 2, "we use progressive growing"), or train at a fixed stage.
The discriminator is ProGAN's.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from progan.conditioning import check_labels
from progan.hub.export import PretrainedMixin
from progan.layers import LEAKY_SLOPE, Blur, EqualizedConv2d, clamp_fp16, run_block, upsample2x
from progan.networks import resolve_stage

from .config import StyleGANConfig
from .layers import AdaIN, ConstantInput, MappingNetwork, NoiseInjection

__all__ = ["StyledLayer", "SynthesisNetwork", "Generator"]

NoiseMode = Literal["random", "const", "none"]


class StyledLayer(nn.Module):
    """(optional upsample + conv + blur) -> noise -> bias -> lrelu -> AdaIN. ``[N, Cin, H, W] -> [N, Cout, H', W']``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *,
                 conv: bool = True, upsample: bool = False, blur: bool = True,
                 blur_padding: str = "replicate") -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.blur = Blur(padding=blur_padding) if (upsample and blur) else nn.Identity()
        self.noise = NoiseInjection(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = upsample2x(x)
        if self.conv is not None:
            x = self.blur(self.conv(x))
        x = self.noise(x, noise)
        x = clamp_fp16(F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), LEAKY_SLOPE))
        return self.adain(x, w)


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim] -> images [N, 3, R, R]``, R = 4 * 2**stage; noise per layer ``[N, 1, r, r]``."""

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config = config
        ch, wd = config.channels, config.w_dim
        self.input = ConstantInput(ch(4))
        layers: list[nn.Module] = [StyledLayer(ch(4), ch(4), wd, conv=False), StyledLayer(ch(4), ch(4), wd)]
        for r in config.resolutions[1:]:
            layers.append(StyledLayer(ch(r // 2), ch(r), wd, upsample=True, blur=config.blur,
                                      blur_padding=config.blur_padding))
            layers.append(StyledLayer(ch(r), ch(r), wd))
        self.layers = nn.ModuleList(layers)                               # layers[2s], layers[2s+1]: stage s
        self.to_rgb = nn.ModuleList(EqualizedConv2d(ch(r), config.image_channels, 1, gain=1.0)
                                    for r in config.resolutions)
        # "const" noise mode: fixed per-layer noise from a fixed seed, rebuilt identically on load
        seeded = torch.Generator().manual_seed(0)
        for i in range(len(self.layers)):
            r = config.resolutions[i // 2]
            self.register_buffer(f"noise_const_{i}", torch.randn(1, 1, r, r, generator=seeded), persistent=False)

    def make_noise(self, batch_size: int, *, stage: int | None = None, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Explicit noise inputs for every layer up to ``stage`` (pass them back to fix the noise)."""
        stage = resolve_stage(self.config, stage)
        return [torch.randn(batch_size, 1, self.config.resolutions[i // 2], self.config.resolutions[i // 2],
                            generator=generator, device=device) for i in range(2 * stage + 2)]

    def _layer_noise(self, i: int, x: torch.Tensor, noise: Sequence[torch.Tensor] | None, mode: NoiseMode) -> torch.Tensor:
        r = self.config.resolutions[i // 2]
        if noise is not None:
            return noise[i]
        if mode == "random":
            return torch.randn(x.shape[0], 1, r, r, device=x.device, dtype=x.dtype)
        if mode == "const":
            return getattr(self, f"noise_const_{i}")
        return x.new_zeros(1, 1, r, r)

    def forward(self, ws: torch.Tensor, *, stage: int | None = None, alpha: float = 1.0,
                noise: Sequence[torch.Tensor] | None = None, noise_mode: NoiseMode = "random") -> torch.Tensor:
        stage = resolve_stage(self.config, stage)
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        if noise is not None and len(noise) < 2 * stage + 2:
            raise ValueError(f"need {2 * stage + 2} noise tensors for stage {stage}, got {len(noise)}")
        res, full = self.config.resolutions, self.config.resolution
        x = self.input(ws.shape[0])
        prev = x
        for i in range(2 * stage + 2):
            if i == 2 * stage:
                prev = x  # output of the previous stage, for the fade-in skip
            x = run_block(self.layers[i], x, ws[:, i], self._layer_noise(i, x, noise, noise_mode),
                          resolution=res[i // 2], full_resolution=full)
        rgb = run_block(self.to_rgb[stage], x, resolution=res[stage], full_resolution=full)
        if stage == 0 or alpha >= 1.0:
            return rgb
        skip = run_block(self.to_rgb[stage - 1], prev, resolution=res[stage - 1], full_resolution=full)
        return torch.lerp(upsample2x(skip), rgb, alpha)


class Generator(PretrainedMixin, nn.Module):
    """StyleGAN-lite generator. ``z [N, latent_dim] -> images [N, 3, R, R]`` (linear output, ~[-1, 1]).

    ``forward(z, stage=, alpha=, psi=, cutoff=, mix_z=, crossover=, noise=, noise_mode=, labels=)``; or use
    the parts: ``map(z, labels) -> w``, ``truncate(ws)``, ``synthesis(ws)``. The ``w_avg`` buffer ``[w_dim]``
    is saved with the weights.
    """

    config_cls = StyleGANConfig

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config.latent_dim, config.w_dim, num_layers=config.mapping_layers,
                                      lr_multiplier=config.mapping_lr_multiplier, num_classes=config.num_classes)
        self.synthesis = SynthesisNetwork(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    def map(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``z [N, latent_dim]`` (+ ``labels [N]`` for a conditional model) -> ``w [N, w_dim]``."""
        check_labels(self.config.num_classes, labels, z.shape[0])
        return self.mapping(z, labels)

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """``w_avg <- beta * w_avg + (1 - beta) * mean(w)`` (StyleGAN's dlatent_avg)."""
        self.w_avg.lerp_(w.detach().float().mean(dim=0).to(self.w_avg.dtype), 1.0 - self.config.w_avg_beta)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """``[N, w_dim] -> [N, num_ws, w_dim]``: the same style for every layer."""
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def truncate(self, ws: torch.Tensor, *, psi: float | torch.Tensor = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """Pull ``ws [N, num_ws, w_dim]`` towards ``w_avg`` on layers ``< cutoff`` (all when None).

        ``psi`` may be a tensor (a scalar, or ``[N, 1, 1]`` per sample): then the graph keeps it as an
        input, which is how the ONNX export takes psi at run time.
        """
        if not isinstance(psi, torch.Tensor) and psi == 1.0:
            return ws
        cutoff = self.num_ws if cutoff is None else cutoff
        if not 0 <= cutoff <= self.num_ws:
            raise ValueError(f"cutoff must be in [0, {self.num_ws}], got {cutoff}")
        truncated = torch.lerp(self.w_avg.to(ws.dtype), ws, psi)
        layer = torch.arange(self.num_ws, device=ws.device).view(1, -1, 1)
        return torch.where(layer < cutoff, truncated, ws)

    def mix(self, ws: torch.Tensor, ws_other: torch.Tensor, crossover: int) -> torch.Tensor:
        """Style mixing: layers ``< crossover`` from ``ws``, the rest from ``ws_other``."""
        if not 0 <= crossover <= self.num_ws:
            raise ValueError(f"crossover must be in [0, {self.num_ws}], got {crossover}")
        layer = torch.arange(self.num_ws, device=ws.device).view(1, -1, 1)
        return torch.where(layer < crossover, ws, ws_other)

    def forward(
        self,
        z: torch.Tensor,
        *,
        stage: int | None = None,
        alpha: float = 1.0,
        psi: float = 1.0,
        cutoff: int | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | None = None,
        noise: Sequence[torch.Tensor] | None = None,
        noise_mode: NoiseMode = "random",
        update_w_avg: bool = False,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        w = self.map(z, labels)                                           # [N, w_dim]
        if update_w_avg:
            self.update_w_avg(w)
        ws = self.broadcast(w)                                            # [N, num_ws, w_dim]
        if mix_z is not None:
            if crossover is None:
                raise ValueError("mix_z needs a crossover layer")
            ws = self.mix(ws, self.broadcast(self.map(mix_z, labels)), crossover)  # same class (stylegan2-ada)
        ws = self.truncate(ws, psi=psi, cutoff=cutoff)
        return self.synthesis(ws, stage=stage, alpha=alpha, noise=noise, noise_mode=noise_mode)
