"""StyleGAN's new layers (Karras et al., CVPR 2019, section 2 and figure 1b).

``MappingNetwork`` (f: Z -> W), ``ConstantInput`` (learned 4x4x512 start), ``NoiseInjection``
(per-pixel noise with learned per-channel scales), ``AdaIN`` (instance norm, then a per-channel scale
and bias computed from w by a learned affine "A"). Equalized layers and pixel norm come from progan.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from progan.conditioning import ClassEmbedding
from progan.layers import LEAKY_SLOPE, EqualizedLinear, PixelNorm

__all__ = ["MappingNetwork", "ConstantInput", "NoiseInjection", "AdaIN"]


class MappingNetwork(nn.Module):
    """8-layer MLP ``z [N, latent_dim] -> w [N, w_dim]``; z is normalized first (section 2).

    With ``num_classes`` (as stylegan2-ada's mapping): ``embed`` maps the one-hot label to ``w_dim``
    features, normalized like z, and the MLP reads ``[z, e(y)]`` (``labels [N]``, int64).
    """

    def __init__(self, latent_dim: int, w_dim: int, *, num_layers: int = 8, lr_multiplier: float = 0.01,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.normalize = PixelNorm()
        self.embed = ClassEmbedding(num_classes, w_dim, normalize=True) if num_classes else None
        dims = [latent_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(dims[i], dims[i + 1], lr_multiplier=lr_multiplier) for i in range(num_layers)
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.normalize(z)
        if self.embed is not None:
            x = torch.cat([x, self.embed(labels).to(x.dtype)], dim=1)     # [N, latent_dim + w_dim]
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LEAKY_SLOPE)
        return x


class ConstantInput(nn.Module):
    """Learned constant ``[1, C, 4, 4]`` broadcast to the batch (section 2: 'learned constant input')."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, size, size))

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.weight.expand(batch_size, -1, -1, -1)


class NoiseInjection(nn.Module):
    """Add single-channel Gaussian noise scaled per channel by learned ``weight`` (initialised to 0).

    ``x [N, C, H, W] + weight[C] * noise [N, 1, H, W]`` ("B" in figure 1b).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight.view(1, -1, 1, 1) * noise.to(x.dtype)


class AdaIN(nn.Module):
    """Adaptive instance normalization (section 2, eq. 1).

    ``AdaIN(x, y) = y_s * (x - mu(x)) / sigma(x) + y_b`` where ``(y_s, y_b) = A(w)`` and ``A`` is a
    learned affine map initialised so that ``y_s = 1, y_b = 0``. ``x [N, C, H, W]``, ``w [N, w_dim]``.
    """

    def __init__(self, channels: int, w_dim: int, *, eps: float = 1e-8) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0  # scale starts at one, bias at zero

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w).to(x.dtype)                                # [N, 2C]
        scale, bias = style[:, : self.channels, None, None], style[:, self.channels :, None, None]
        y = x.float()  # instance statistics in fp32 (progan.layers: eps is below fp16 resolution)
        y = y - y.mean(dim=(2, 3), keepdim=True)
        y = y * torch.rsqrt(y.square().mean(dim=(2, 3), keepdim=True) + self.eps)
        return y.to(x.dtype) * scale + bias

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
