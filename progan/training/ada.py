"""ADA's augmentation pipeline ``bgc`` (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", section 2, appendix B, figure 4), in pure PyTorch: differentiable to second order
(R1 and WGAN-GP differentiate through it), CPU and GPU, fake-tensor safe (the memory estimate traces it).

Three groups of transforms, each transform applied to each image independently with probability
``p * multiplier`` (its own mask; appendix B: every multiplier is 1 in ``bgc``):

- **blit** (pixel blitting): x-flip (mirror with probability 1/2), rotation by a multiple of 90 degrees
  (uniform over 0, 90, 180, 270), integer translation (uniform in +-0.125 of the size per axis,
  rounded to whole pixels);
- **geom** (general geometric): isotropic scaling (``2 ** N(0, 0.2**2)``), arbitrary rotation (uniform
  in +-180 degrees, applied before *and* after the anisotropic scaling, each with probability
  ``1 - sqrt(1 - p)`` so that "some rotation" happens with probability p), anisotropic scaling
  (``x * s``, ``y / s``, ``s = 2 ** N(0, 0.2**2)``), fractional translation (``N(0, 0.125**2)`` of the size);
- **color**: brightness (add ``N(0, 0.2**2)``), contrast (multiply by ``2 ** N(0, 0.5**2)``), luma flip
  (reflect along the luma axis ``v = (1, 1, 1) / sqrt(3)`` with probability 1/2), hue rotation (about
  ``v``, uniform in +-180 degrees), saturation (scale the part orthogonal to ``v`` by ``2 ** N(0, 1)``).

As in the paper, all blit and geom transforms compose into ONE inverse affine matrix per image
(``geometric_matrix``: output pixel -> input pixel, in pixel coordinates centred on the image) executed
by one ``grid_sample`` with reflection padding, and all colour transforms into ONE 4x4 homogeneous
colour matrix (``color_matrix``) acting on RGB in [-1, 1] (so contrast scales about mid-grey, 0).

**Departure from the paper (documented, measured).** The paper pads by reflection, upsamples 2x with a
``sym6`` wavelet filter, samples bilinearly and filters/downsamples back, so that rotations and
scalings alias less. Here ``grid_sample`` samples the image itself bilinearly, reflecting about the
border pixel centres (``align_corners=True``), which is exactly the paper's ``reflect`` padding. Blit
transforms land on pixel centres, so they stay exact; geom transforms are interpolated without the
anti-aliasing filter (slightly blurrier rotations, some aliasing when shrinking). Cost, measured by
``python -m benchmarks.augment_cost`` on the project's 2-core CPU loaded by other jobs (1 thread,
batch 32, 64 px, forward + backward, ms per call): colour only 20, blit + colour 34, ``bgc`` 43
(DiffAugment 18); a plain-PyTorch cost model of the filtered 2x path 1,860; one StyleGAN-lite demo-64
D + G step 3,250. At about four calls per step (reals, fakes, R1's reals, the G step) ``bgc`` adds
about 5% to a step; the filtered path would more than triple it on a CPU.

Random numbers come from the global torch RNG (saved per process in checkpoints). Every parameter and
every mask is drawn whatever p is, so the RNG stream does not depend on p.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["GROUPS", "MULTIPLIERS", "IDENTITY", "Strengths", "draw_parameters", "geometric_matrix",
           "color_matrix", "apply_geometric", "apply_color", "augment_with", "AdaAugment"]

GROUPS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
MULTIPLIERS: dict[str, float] = {name: 1.0 for names in GROUPS.values() for name in names}  # bgc: all 1

# The value of each parameter that leaves an image unchanged (translations are [N, 2] pixel offsets).
IDENTITY: dict[str, float] = {"xflip": 0.0, "rotate90": 0.0, "xint": 0.0, "scale": 1.0, "rotate_pre": 0.0,
                              "aniso": 1.0, "rotate_post": 0.0, "xfrac": 0.0, "brightness": 0.0,
                              "contrast": 1.0, "lumaflip": 0.0, "hue": 0.0, "saturation": 1.0}


@dataclass(frozen=True)
class Strengths:
    """The paper's ranges and standard deviations (appendix B; stylegan2-ada's defaults)."""

    xint_max: float = 0.125       # integer translation: uniform in +- this fraction of the size
    scale_std: float = 0.2        # isotropic scaling: log2 standard deviation
    rotate_max: float = 1.0       # arbitrary rotation: uniform in +- rotate_max * pi
    aniso_std: float = 0.2        # anisotropic scaling: log2 standard deviation
    xfrac_std: float = 0.125      # fractional translation: standard deviation, fraction of the size
    brightness_std: float = 0.2   # brightness: additive standard deviation (images in [-1, 1])
    contrast_std: float = 0.5     # contrast: log2 standard deviation
    hue_max: float = 1.0          # hue rotation: uniform in +- hue_max * pi
    saturation_std: float = 1.0   # saturation: log2 standard deviation


def draw_parameters(n: int, p: float, *, height: int, width: int, groups: tuple[str, ...] = ("blit", "geom", "color"),
                    multipliers: dict[str, float] = MULTIPLIERS, strengths: Strengths = Strengths(),
                    device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Per-image parameters of every transform of ``groups``: the drawn value where the transform's own
    mask (``rand < p * multiplier``) chose the image, the identity value elsewhere."""
    s = strengths
    out: dict[str, torch.Tensor] = {}

    def pick(name: str, value: torch.Tensor, prob: float) -> None:
        mask = torch.rand(n, device=device) < prob                      # one independent mask per transform
        out[name] = torch.where(mask.view(-1, *[1] * (value.dim() - 1)), value, torch.full_like(value, IDENTITY[name]))

    size = torch.tensor([width, height], dtype=torch.float32, device=device)   # (x, y)
    for group in groups:
        m = {name: min(p * multipliers[name], 1.0) for name in GROUPS[group]}
        if group == "blit":
            pick("xflip", torch.randint(0, 2, (n,), device=device).float(), m["xflip"])
            pick("rotate90", torch.randint(0, 4, (n,), device=device).float(), m["rotate90"])
            pick("xint", torch.round((torch.rand(n, 2, device=device) * 2 - 1) * s.xint_max * size), m["xint"])
        elif group == "geom":
            pick("scale", torch.exp2(torch.randn(n, device=device) * s.scale_std), m["scale"])
            p_rot = 1 - math.sqrt(1 - m["rotate"])                       # P(pre or post) = p * multiplier
            pick("rotate_pre", (torch.rand(n, device=device) * 2 - 1) * math.pi * s.rotate_max, p_rot)
            pick("aniso", torch.exp2(torch.randn(n, device=device) * s.aniso_std), m["aniso"])
            pick("rotate_post", (torch.rand(n, device=device) * 2 - 1) * math.pi * s.rotate_max, p_rot)
            pick("xfrac", torch.randn(n, 2, device=device) * s.xfrac_std * size, m["xfrac"])
        elif group == "color":
            pick("brightness", torch.randn(n, device=device) * s.brightness_std, m["brightness"])
            pick("contrast", torch.exp2(torch.randn(n, device=device) * s.contrast_std), m["contrast"])
            pick("lumaflip", torch.randint(0, 2, (n,), device=device).float(), m["lumaflip"])
            pick("hue", (torch.rand(n, device=device) * 2 - 1) * math.pi * s.hue_max, m["hue"])
            pick("saturation", torch.exp2(torch.randn(n, device=device) * s.saturation_std), m["saturation"])
        else:
            raise ValueError(f"unknown ADA group {group!r}; choose from {', '.join(GROUPS)}")
    return out


# --- matrices: [N] parameters -> [N, 3, 3] (2-D homogeneous) or [N, 4, 4] (RGB homogeneous) ------------
def _rows(*rows: list) -> torch.Tensor:
    """Rows of [N] tensors or Python numbers -> [N, R, C]."""
    ref = next(e for row in rows for e in row if isinstance(e, torch.Tensor))
    flat = [e if isinstance(e, torch.Tensor) else torch.full_like(ref, float(e)) for row in rows for e in row]
    return torch.stack(flat, dim=-1).view(ref.shape[0], len(rows), len(rows[0]))


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _rows([1, 0, tx], [0, 1, ty], [0, 0, 1])


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _rows([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def _rotate(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return _rows([cos, -sin, 0], [sin, cos, 0], [0, 0, 1])


def geometric_matrix(params: dict[str, torch.Tensor], n: int, *,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """The inverse of the composed forward transform, ``[N, 3, 3]``: centred output pixel -> input pixel.

    Forward order (appendix B): x-flip, rotate90, integer translation, scale, pre-rotation, anisotropic
    scaling, post-rotation, fractional translation; the inverse multiplies the inverses in that order.
    Coordinates: x to the right, y down, origin at the image centre; a rotation by theta maps (1, 0) to
    (cos theta, sin theta).
    """
    g = torch.eye(3, device=device).expand(n, 3, 3)
    if "xflip" in params:
        g = g @ _scale(1 - 2 * params["xflip"], torch.ones(n, device=device))
    if "rotate90" in params:  # exact cos/sin of multiples of 90 degrees (no 6e-17 from cos(pi / 2))
        k = params["rotate90"].long() % 4
        cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[k]
        sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[k]
        g = g @ _rotate(cos, -sin)
    if "xint" in params:
        g = g @ _translate(-params["xint"][:, 0], -params["xint"][:, 1])
    if "scale" in params:
        g = g @ _scale(1 / params["scale"], 1 / params["scale"])
    if "rotate_pre" in params:
        g = g @ _rotate(torch.cos(params["rotate_pre"]), -torch.sin(params["rotate_pre"]))
    if "aniso" in params:
        g = g @ _scale(1 / params["aniso"], params["aniso"])
    if "rotate_post" in params:
        g = g @ _rotate(torch.cos(params["rotate_post"]), -torch.sin(params["rotate_post"]))
    if "xfrac" in params:
        g = g @ _translate(-params["xfrac"][:, 0], -params["xfrac"][:, 1])
    return g


def color_matrix(params: dict[str, torch.Tensor], n: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """The composed colour transform ``[N, 4, 4]`` acting on homogeneous RGB (appendix B order:
    brightness, contrast, luma flip, hue rotation, saturation). The luma axis is ``v = (1, 1, 1) / sqrt(3)``."""
    eye = torch.eye(4, device=device)
    c = eye.expand(n, 4, 4)
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
    vv = torch.outer(v, v)                                              # projection onto the luma axis
    if "brightness" in params:
        b = params["brightness"]
        c = _rows([1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]) @ c
    if "contrast" in params:
        k = params["contrast"]
        c = _rows([k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]) @ c
    if "lumaflip" in params:  # Householder reflection through the plane orthogonal to v
        c = (eye - 2 * vv * params["lumaflip"].view(-1, 1, 1)) @ c
    if "hue" in params:       # Rodrigues about v: cos (I - v v^T) + sin [v]x + v v^T, homogeneous 1 kept
        t = params["hue"].view(-1, 1, 1)
        cross = torch.tensor([[0.0, -1, 1, 0], [1, 0, -1, 0], [-1, 1, 0, 0], [0, 0, 0, 0]], device=device)
        cross = cross / math.sqrt(3)                                     # [v]x, the cross product with v
        rgb = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], device=device))
        c = (torch.cos(t) * (rgb - vv) + torch.sin(t) * cross + vv + (eye - rgb)) @ c
    if "saturation" in params:
        c = (vv + (eye - vv) * params["saturation"].view(-1, 1, 1)) @ c
    return c


# --- execution ----------------------------------------------------------------------------------------
def apply_geometric(x: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Sample ``x [N, C, H, W]`` at ``g_inv @ (output pixel)``: bilinear, reflection about the border
    pixel centres (the paper's ``reflect`` padding)."""
    n, _, h, w = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32) - cy,
                            torch.arange(w, device=x.device, dtype=torch.float32) - cx, indexing="ij")
    out = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, h * w, 3)   # [1, HW, 3]
    src = out @ g_inv.transpose(1, 2)                                    # [N, HW, 3]
    grid = torch.stack([src[..., 0] / max(cx, 0.5), src[..., 1] / max(cy, 0.5)], dim=-1).view(n, h, w, 2)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=True)


def apply_color(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``x [N, 3, H, W]`` (or 1 channel: the mean of the RGB rows, as stylegan2-ada) through ``c [N, 4, 4]``."""
    n, channels, h, w = x.shape
    flat = x.reshape(n, channels, h * w)
    c = c.to(x.dtype)
    if channels == 3:
        out = c[:, :3, :3] @ flat + c[:, :3, 3:]
    elif channels == 1:
        rows = c[:, :3, :].mean(dim=1, keepdim=True)                    # [N, 1, 4]
        out = flat * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    else:
        raise ValueError(f"ADA's colour transforms need 1 or 3 channels, got {channels}")
    return out.view(n, channels, h, w)


def augment_with(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply drawn ``params`` to ``x [N, C, H, W]``: one grid_sample, then one colour matrix (half
    precision inputs are computed in fp32: bf16 sampling coordinates would be off by a tenth of a pixel)."""
    n = x.shape[0]
    y = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if any(name in params for name in (*GROUPS["blit"], "scale", "rotate_pre", "aniso", "rotate_post", "xfrac")):
        y = apply_geometric(y, geometric_matrix(params, n, device=x.device))
    if any(name in params for name in GROUPS["color"]):
        y = apply_color(y, color_matrix(params, n, device=x.device))
    return y.to(x.dtype)


@dataclass
class AdaAugment:
    """ADA's ``bgc`` pipeline at strength ``p`` (the controller sets it): ``[N, C, H, W] -> same``.

    ``p = 0`` returns the input tensor itself; ``groups`` selects a sub-pipeline (figure 4's ``b``, ``bg``...).
    """

    p: float = 0.0
    groups: tuple[str, ...] = ("blit", "geom", "color")
    multipliers: dict[str, float] = field(default_factory=lambda: dict(MULTIPLIERS))
    strengths: Strengths = field(default_factory=Strengths)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return x
        params = draw_parameters(x.shape[0], self.p, height=x.shape[2], width=x.shape[3], groups=self.groups,
                                 multipliers=self.multipliers, strengths=self.strengths, device=x.device)
        return augment_with(x, params)
