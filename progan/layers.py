"""Building blocks shared by both generator families.

Progressive Growing of GANs (Karras et al., ICLR 2018):
- section 4.1, *equalized learning rate*: weights are initialised N(0, 1) and scaled at run time by
  the He constant ``gain / sqrt(fan_in)``, so every layer learns at the same speed under Adam.
- section 4.2, *pixelwise feature vector normalization* (``PixelNorm``).
- section 3, *minibatch standard deviation* (``MinibatchStdDev``).

fp16 safety, after NVlabs stylegan2-ada (``networks.py``: ``num_fp16_res``, ``conv_clamp``, statistics in
fp32): under fp16 autocast only the ``NUM_FP16_RES`` highest resolutions run in fp16 (``run_block``;
the low resolutions are cheap and hold the statistics everything depends on), norms and minibatch
statistics are computed in float32 whatever the input dtype (``eps=1e-8`` is below fp16 resolution,
so an all-zero feature vector would give 0 * inf = NaN, and squares overflow above 65504), and
``clamp_fp16`` bounds fp16 activations at +-256. For fp32 and bf16 all three are no-ops.

The run-time scale is a plain float attribute, never a parameter or a buffer, so saved keys stay
``blocks.3.conv1.weight`` and exported weights are the raw N(0, 1)-scale tensors.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EqualizedLinear",
    "EqualizedConv2d",
    "PixelNorm",
    "MinibatchStdDev",
    "Blur",
    "upsample2x",
    "downsample2x",
    "clamp_fp16",
    "run_block",
    "NUM_FP16_RES",
    "LEAKY_SLOPE",
    "FP16_CLAMP",
]

LEAKY_SLOPE = 0.2  # ProGAN section 4.2 / appendix A: leaky ReLU with leakiness 0.2 everywhere
HE_GAIN = math.sqrt(2.0)
FP16_CLAMP = 256.0  # stylegan2-ada's conv_clamp: fp16 activations stay far from 65504
NUM_FP16_RES = 4    # stylegan2-ada's num_fp16_res: fp16 only in the 4 highest resolutions


def run_block(block: nn.Module, x: torch.Tensor, *args: Any, resolution: int, full_resolution: int) -> torch.Tensor:
    """``block(x, *args)``, with autocast off and ``x`` in fp32 if fp16 autocast is on and ``resolution``
    is below the ``NUM_FP16_RES`` highest resolutions of the network; otherwise a plain call."""
    device = x.device.type
    if (resolution * 2 ** (NUM_FP16_RES - 1) >= full_resolution or device not in ("cuda", "cpu")
            or not torch.is_autocast_enabled(device) or torch.get_autocast_dtype(device) != torch.float16):
        return block(x, *args)  # also the meta device (shape/memory traces), which has no autocast
    with torch.autocast(device, enabled=False):  # fp16 inputs (x, StyleGAN's w) go back to fp32
        return block(x.float(), *(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args))


def clamp_fp16(x: torch.Tensor, limit: float = FP16_CLAMP) -> torch.Tensor:
    """Clamp fp16 activations to ``[-limit, limit]`` (stylegan2-ada ``conv_clamp``); other dtypes pass through."""
    return x.clamp(-limit, limit) if x.dtype == torch.float16 else x


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate.

    Input ``[N, in_features]`` -> output ``[N, out_features]``.
    ``lr_multiplier`` slows the layer down (StyleGAN's mapping network uses 0.01): the stored weight is
    initialised with std ``1 / lr_multiplier`` and multiplied back at run time.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        gain: float = HE_GAIN,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        self.weight_scale = gain / math.sqrt(in_features) * lr_multiplier  # He constant, applied per call
        self.spectral_norm: nn.Module | None = None  # set by spectral_norm.apply_spectral_norm

    def effective_weight(self) -> torch.Tensor:
        """``weight * weight_scale``, divided by its largest singular value under ``--spectral-norm``."""
        weight = self.weight * self.weight_scale
        return weight if self.spectral_norm is None else self.spectral_norm(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return F.linear(x, self.effective_weight(), bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, lr_multiplier={self.lr_multiplier}, "
                f"weight_scale={self.weight_scale:.4g}")


class EqualizedConv2d(nn.Module):
    """2-D convolution with equalized learning rate; 'same' padding for odd kernels.

    Input ``[N, in_channels, H, W]`` -> output ``[N, out_channels, H, W]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        gain: float = HE_GAIN,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.spectral_norm: nn.Module | None = None  # set by spectral_norm.apply_spectral_norm

    def effective_weight(self) -> torch.Tensor:
        """``weight * weight_scale``, divided by its largest singular value under ``--spectral-norm``."""
        weight = self.weight * self.weight_scale
        return weight if self.spectral_norm is None else self.spectral_norm(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"bias={self.bias is not None}, weight_scale={self.weight_scale:.4g}")


class PixelNorm(nn.Module):
    """Normalize each pixel's feature vector to unit RMS over channels (ProGAN section 4.2).

    ``b = a / sqrt(mean_c(a^2) + eps)``, any shape ``[N, C, ...]``.
    """

    def __init__(self, *, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()  # fp32 statistics (a no-op for fp32 input)
        return (y * torch.rsqrt(y.square().mean(dim=1, keepdim=True) + self.eps)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class MinibatchStdDev(nn.Module):
    """Append the minibatch standard deviation as extra feature maps (ProGAN section 3).

    Input ``[N, C, H, W]`` -> output ``[N, C + num_features, H, W]``. The batch is split into groups of
    ``group_size`` samples (sample ``i`` joins group ``i % (N // group_size)``); for every group, the
    std over its samples of each feature at each pixel is averaged over features and pixels, giving
    one number per group (per feature slice when ``num_features > 1``) that is replicated over the
    group's samples and pixels. If ``N`` is not a multiple of ``group_size``, the largest group size
    that divides ``N`` is used, so any batch works.
    """

    def __init__(self, *, group_size: int = 4, num_features: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_features = num_features
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = next(s for s in range(min(self.group_size, n), 0, -1) if n % s == 0)
        f = self.num_features
        y = x.reshape(g, n // g, f, c // f, h, w).float()                 # [G, M, F, C/F, H, W]
        y = (y.var(dim=0, unbiased=False) + self.eps).sqrt()             # [M, F, C/F, H, W]
        y = y.mean(dim=(2, 3, 4))                                         # [M, F]
        y = y.to(x.dtype).reshape(-1, f, 1, 1).repeat(g, 1, h, w)         # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_features={self.num_features}"


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] low-pass filter (StyleGAN section 2, after Zhang 2019).

    StyleGAN filters after every upsampling and before every downsampling to reduce aliasing.
    Shape-preserving: ``[N, C, H, W]`` -> ``[N, C, H, W]``. ``padding`` is what the border pixels see
    outside the image: ``"replicate"`` (the edge pixel again; what the bundled weights were trained
    with) or ``"zero"`` (NVIDIA's blur2d, a 'SAME' depthwise conv). Zero padding is the conv's own
    padding, so no separate pad op reaches autograd (torch.compile on CPU fails in the replicate
    pad's backward: ``StyleGANConfig.blur_padding``).
    """

    PADDINGS = ("replicate", "zero")

    def __init__(self, *, padding: str = "replicate") -> None:
        super().__init__()
        if padding not in self.PADDINGS:
            raise ValueError(f"blur padding must be one of {self.PADDINGS}, got {padding!r}")
        self.padding = padding
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(c, 1, 3, 3)
        if self.padding == "zero":
            return F.conv2d(x, kernel, padding=1, groups=c)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling, as ProGAN's generator (appendix A)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, as ProGAN's discriminator (appendix A)."""
    return F.avg_pool2d(x, kernel_size=2)
