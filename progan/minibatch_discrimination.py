"""Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2).

A discriminator that looks at one sample at a time cannot tell a collapsed generator (every sample
alike) from a good one. Section 3.2 lets D compare the samples of a minibatch: the feature vector
``f(x_i)`` in ``R^A`` of every sample is multiplied by a learned tensor ``T`` in ``R^{A x B x C}``,
giving a matrix ``M_i`` in ``R^{B x C}``; for each of the ``B`` rows (kernels) the closeness of two
samples is ``c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1)`` and the layer's output for sample ``i``
is ``o(x_i)_b = sum_j c_b(x_i, x_j)`` over the whole minibatch (``j = i`` included, as the paper's sum
from 1 to n: a sample alone gets ``o = 1``, a batch of ``n`` identical samples gets ``o = n``).
``o(x_i)`` in ``R^B`` is concatenated to the features and fed to the next layer. The paper computes it
separately for minibatches of real and of generated samples, which is how the training step calls D.

Here it takes the place of ProGAN's minibatch standard deviation (section 3 of Karras et al. 2018) at
the same spot, the start of D's 4x4 block: ``f(x_i)`` is the flattened ``[C, 4, 4]`` activation map
and the ``B`` outputs are appended as constant ``4x4`` maps, as the stddev map is, so the block's
3x3 conv sees ``C + B`` channels. ``T`` follows the equalized learning rate (Karras et al. 2018,
section 4.1): stored N(0, 1), scaled by ``1 / sqrt(A)`` at run time so ``M`` has unit-scale entries.
Statistics run in float32 whatever the input dtype (fp16 distances and exponentials lose the signal).
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MinibatchDiscrimination", "parse_minibatch_discrimination"]


def parse_minibatch_discrimination(spec: str) -> tuple[int, int] | None:
    """``"B,C"`` -> ``(B, C)`` (number of kernels, kernel dimension); ``""`` -> ``None`` (off)."""
    if not spec.strip():
        return None
    try:
        kernels, dim = (int(v) for v in spec.split(","))
    except ValueError:
        raise ValueError(f"--minibatch-discrimination must look like B,C (kernels,dimension), got {spec!r}") from None
    if kernels < 1 or dim < 1:
        raise ValueError(f"--minibatch-discrimination: B and C must be >= 1, got {spec!r}")
    return kernels, dim


class MinibatchDiscrimination(nn.Module):
    """Append ``o(x_i)`` (section 3.2) as ``num_kernels`` constant maps: ``[N, C, H, W] -> [N, C + B, H, W]``.

    ``in_features`` is ``A = C * H * W``, the length of the flattened per-sample feature vector.
    """

    def __init__(self, in_features: int, *, num_kernels: int, kernel_dim: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.weight = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim))  # T, [A, B*C]
        self.weight_scale = 1.0 / math.sqrt(in_features)  # equalized learning rate, applied per call

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """``o(x_i)`` for every sample: ``[N, C, H, W]`` (or ``[N, A]``) -> ``[N, B]`` in float32."""
        f = x.flatten(1).float()                                               # [N, A]
        m = (f @ (self.weight.float() * self.weight_scale)).view(-1, self.num_kernels, self.kernel_dim)  # [N, B, C]
        l1 = (m[:, None] - m[None, :]).abs().sum(dim=3)                         # [N, N, B]: ||M_i,b - M_j,b||_1
        return torch.exp(-l1).sum(dim=1)                                        # [N, B]: sum over j

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        o = self.closeness(x).to(x.dtype)                                      # [N, B]
        return torch.cat([x, o[:, :, None, None].expand(n, self.num_kernels, h, w)], dim=1)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}, "
                f"weight_scale={self.weight_scale:.4g}")
