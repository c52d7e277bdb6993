"""Differentiable augmentation of everything the discriminator sees, for small datasets.

- **DiffAugment** (``--augment diffaugment``; Zhao et al. 2020, "Differentiable Augmentation for
  Data-Efficient GAN Training", section 3 and their reference policies): ``color`` (brightness,
  saturation, contrast), ``translation`` (integer shifts of up to 1/8 of the image, zero padding) and
  ``cutout`` (a zeroed square of half the image side at a random place), on every image, always.
- **ADA** (``--augment ada``; Karras et al. 2020, "Training Generative Adversarial Networks with Limited
  Data", section 2, appendix B): the paper's ``bgc`` pipeline, in ``training.ada``, each transform
  applied per image with probability ``p`` times its multiplier, and ``p`` steered by the overfitting
  heuristic ``r_t = E[sign(D(real))]`` (section 3.1, ``AdaptiveController``): every ``interval`` steps
  ``p += sign(r_t - target) * images / (speed_kimg * 1000)``, target 0.6, speed 500 kimg. With
  ``p < ~0.8`` the paper's transforms do not leak into G's output (section 2.2). The heuristic needs a
  D whose score sign means real vs fake (``ADA_SIGN_LOSSES``).

Both are applied to reals *and* fakes, in the D step, the G step and inside the penalties, so G is
trained through the augmentation (DiffAugment section 3.2, ADA section 2: augmenting reals only makes G
learn the augmented distribution). ``Augment`` is applied by wrapping the discriminator call once
(``training.step``), which is what guarantees one augmentation per D evaluation, never two.

Pure PyTorch, no custom ops: elementwise arithmetic, one gather (DiffAugment), one grid_sample and one
batched matmul (ADA), so they run on CPU and GPU and pass gradients (and the double backward of
R1/WGAN-GP) to their input. Random numbers come from the global torch RNG, which checkpoints save per
process, so a resumed run draws the same augmentations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .ada import AdaAugment

__all__ = ["POLICIES", "parse_policy", "Augment", "AdaAugment", "AdaptiveController", "build_augment",
           "ADA_SIGN_LOSSES", "check_ada_loss", "translate", "cutout", "brightness", "saturation", "contrast"]

# Adversarial losses under which sign(D(real)) says "real" (> 0) or "fake" (< 0), so ADA's r_t =
# E[sign D(real)] measures how sure D is of the training reals (ADA section 3.1): the logistic loss, hinge
# (margin around 0) and LSGAN as coded here (targets -1/+1, boundary 0; with 0/1 targets it would be 0.5).
# Not WGAN: a critic's scores carry an arbitrary offset (drift only pulls their mean towards 0), so their
# sign says nothing.
ADA_SIGN_LOSSES: set[str] = {"logistic", "hinge", "lsgan"}


def check_ada_loss(loss: str) -> None:
    """Refuse ``--augment ada`` under a loss whose D-score sign ADA cannot steer by (one-line ValueError).
    ``loss`` is the resolved objective (``TrainConfig.objective``: ``logistic_r1``, ``hinge+none``...)."""
    from ..losses import split_loss

    adversarial = split_loss(loss)[0]
    if adversarial not in ADA_SIGN_LOSSES:
        kind = "a WGAN critic, whose scores have an arbitrary offset" if adversarial == "wgan" else f"--loss {loss}"
        raise ValueError(f"--augment ada cannot be used with --loss {loss}: ADA steers p by r_t = E[sign D(real)], "
                         f"which means nothing for {kind}; use a logistic, hinge or lsgan loss, "
                         "or --augment diffaugment")


# --- transforms: x [N, C, H, W] in [-1, 1]; `mask` [N] bool selects the images that change --------
def _where(mask: torch.Tensor | None, changed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return changed if mask is None else torch.where(mask.view(-1, 1, 1, 1), changed, x)


def brightness(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Add a per-image offset uniform in [-0.5, 0.5) (DiffAugment ``rand_brightness``)."""
    shift = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5
    return _where(mask, x + shift, x)


def saturation(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale the distance to the per-pixel channel mean by a factor uniform in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)                                   # [N, 1, H, W]
    factor = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2
    return _where(mask, (x - mean) * factor + mean, x)


def contrast(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale the distance to the per-image mean by a factor uniform in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)                           # [N, 1, 1, 1]
    factor = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5
    return _where(mask, (x - mean) * factor + mean, x)


def translate(x: torch.Tensor, mask: torch.Tensor | None = None, *, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its size per axis; vacated pixels become 0."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    if mask is not None:  # unselected images shift by 0: the identity
        dy, dx = dy * mask.view(-1, 1, 1), dx * mask.view(-1, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy          # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # [N, 1, H, W]
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    shifted = x.flatten(2).gather(2, index).view_as(x)                  # one gather: differentiable
    return shifted * inside


def cutout(x: torch.Tensor, mask: torch.Tensor | None = None, *, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio`` * size per image, centred anywhere (it may be clipped)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)  # [N, H, W]
    if mask is not None:
        hole = hole & mask.view(-1, 1, 1)
    return x * (~hole).unsqueeze(1).to(x.dtype)


Transform = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
POLICIES: dict[str, tuple[Transform, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translate,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``'color,translation,cutout'`` -> the names, checked; order is kept (it is the order applied)."""
    names = tuple(s.strip() for s in policy.split(",") if s.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown or not names:
        raise ValueError(f"--augment-policy: unknown or empty policy {policy!r}; choose from {', '.join(POLICIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--augment-policy: {policy!r} names a transform twice")
    return names


@dataclass
class Augment:
    """DiffAugment: ``images -> augmented images``, each transform applied per image with probability ``p``.

    ``p = 1`` is DiffAugment (every transform on every image, no extra random draws for the masks);
    ``p = 0`` returns the input tensor itself.
    """

    policy: tuple[str, ...]
    p: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:          # [N, C, H, W] -> same
        if self.p <= 0:
            return x
        for name in self.policy:
            for transform in POLICIES[name]:
                mask = None if self.p >= 1 else torch.rand(x.shape[0], device=x.device) < self.p
                x = transform(x, mask)
        return x


def build_augment(kind: str, *, policy: str = "color,translation,cutout",
                  p: float | None = None) -> "Augment | AdaAugment | None":
    """The augmentation for ``--augment kind``: None, DiffAugment's ``policy`` (p = 1) or ADA (p = 0:
    the controller raises it); ``p`` overrides the starting strength (benchmarks, memory estimate)."""
    if kind == "none":
        return None
    if kind == "diffaugment":
        return Augment(parse_policy(policy), p=1.0 if p is None else p)
    if kind == "ada":
        return AdaAugment(p=0.0 if p is None else p)
    raise ValueError(f"--augment must be none, diffaugment or ada, got {kind!r}")


@dataclass
class AdaptiveController:
    """ADA's p controller (section 3.1): every ``interval`` steps, move p by the sign of ``r_t - target``.

    The caller sums ``sign(D(real))`` and counts the real images over the interval (across all
    processes) and passes both to ``adjust``; the step size makes p able to go from 0 to 1 in
    ``speed_kimg`` thousand real images (ADA: 500 kimg).
    """

    target: float = 0.6
    interval: int = 4             # steps between adjustments (ADA: 4 minibatches)
    speed_kimg: float = 500.0
    p: float = 0.0

    def adjust(self, sign_sum: float, count: int) -> float:
        """Update p from the interval's ``sum(sign(D(real)))`` over ``count`` images; returns r_t."""
        if count <= 0:
            return float("nan")
        r_t = sign_sum / count
        step = count / (self.speed_kimg * 1000)
        direction = (r_t > self.target) - (r_t < self.target)          # np.sign, 0 on target
        self.p = min(max(self.p + direction * step, 0.0), 1.0)
        return r_t
