"""Training options as one frozen dataclass; argparse flags are generated from its fields.

Defaults follow the papers where they say something: Adam(lr=0.001, betas=(0, 0.99), eps=1e-8)
(ProGAN appendix A.1, StyleGAN appendix C), WGAN-GP lambda 10 and drift 0.001 (ProGAN), R1 gamma 10
and style-mixing probability 0.9 (StyleGAN section 3.1 / appendix C).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .augment import parse_policy

__all__ = ["TrainConfig", "RECIPES", "recipe", "add_arguments", "from_namespace", "parse_batch_sizes"]

MIXED_PRECISION = ("no", "fp16", "bf16")
AUGMENT = ("none", "diffaugment", "ada")


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    family: str = _opt("progan", "model family: progan or stylegan_lite")
    preset: str = _opt("small-32", "model preset (see `python -m families`)")
    data: str = _opt("", "dataset dir from data_prep, or a folder of images; empty = built-in OpenMoji")
    out: str = _opt("runs/default", "output dir: checkpoints/, samples/, logs, export/")
    kimg: float = _opt(600.0, "total training length in thousands of real images shown to D")
    batch_size: int = _opt(16, "per-process batch size (all resolutions unless --batch-sizes)")
    batch_sizes: str = _opt("", "per-resolution per-process batch sizes, e.g. '4:64,8:64,16:32'")
    progressive: bool = _opt(True, "progressive growing (ProGAN section 2); --no-progressive = fixed resolution")
    fade_kimg: float = _opt(60.0, "kimg to fade in each new resolution")
    stable_kimg: float = _opt(60.0, "kimg to stabilize each resolution")
    loss: str = _opt("", "wgan_gp or logistic_r1; empty = family default (ProGAN: wgan_gp, StyleGAN: logistic_r1)")
    g_lr: float = _opt(0.001, "generator Adam learning rate")
    d_lr: float = _opt(0.001, "discriminator Adam learning rate")
    adam_beta1: float = _opt(0.0, "Adam beta1")
    adam_beta2: float = _opt(0.99, "Adam beta2")
    gp_lambda: float = _opt(10.0, "WGAN-GP weight")
    drift_epsilon: float = _opt(0.001, "drift penalty weight")
    r1_gamma: float = _opt(10.0, "R1 weight (gamma)")
    mixing_prob: float = _opt(0.9, "style-mixing regularization probability (StyleGAN only)")
    ema_half_life_kimg: float = _opt(10.0, "generator EMA half-life in kimg")
    ema_rampup: float = _opt(0.05, "EMA ramp-up: half-life <= images_seen * rampup (0 disables)")
    mixed_precision: str = _opt("no", "no, fp16 or bf16 (bf16 is the one to use on GPUs: fp16 needs loss scaling "
                                "and overflows more easily)", choices=MIXED_PRECISION)
    tf32: bool = _opt(False, "let CUDA matmuls and convolutions use TensorFloat-32 (faster on Ampere+, ~10-bit "
                      "mantissa); off = true fp32 when --mixed-precision no")
    cudnn_benchmark: bool = _opt(True, "let cuDNN time its algorithms per input shape (CUDA only; faster, and "
                                 "nondeterministic as cuDNN always is)")
    grad_accum: int = _opt(1, "gradient accumulation micro-batches per step")
    seed: int = _opt(0, "random seed (per-rank streams derive from it)")
    workers: int = _opt(2, "DataLoader worker processes per rank")
    xflip: bool = _opt(False, "horizontal-flip augmentation (doubles the dataset)")
    augment: str = _opt("none", "augmentation of every image D sees: none, diffaugment (always on) or ada "
                        "(probability steered by r_t = E[sign D(real)])", choices=AUGMENT)
    augment_policy: str = _opt("color,translation,cutout", "transforms for --augment, comma-separated, in order")
    ada_target: float = _opt(0.6, "ADA: target of r_t = E[sign(D(real))]")
    ada_interval: int = _opt(4, "ADA: steps between adjustments of p")
    ada_kimg: float = _opt(100.0, "ADA: kimg for p to go from 0 to 1 at most (ADA paper: 500)")
    r1_every: int = _opt(1, "lazy R1 (StyleGAN2 section 3.1): apply R1 every K steps, times K; 1 = every step")
    gp_every: int = _opt(1, "lazy WGAN-GP: the gradient penalty every K steps, times K; 1 = every step")
    channels_last: bool = _opt(False, "channels_last memory format for models and images (faster on many CPUs/GPUs)")
    checkpoint_kimg: float = _opt(50.0, "checkpoint interval in kimg")
    keep_checkpoints: int = _opt(3, "how many recent checkpoints to keep")
    sample_kimg: float = _opt(20.0, "sample-grid interval in kimg")
    sample_count: int = _opt(16, "images in each sample grid (fixed latents)")
    log_every: int = _opt(10, "log losses every N steps")
    sync_every: int = _opt(10, "check stop requests and non-finite losses across processes every N steps "
                           "(and always before writing anything); fewer host syncs on GPUs")
    dist_timeout: float = _opt(1800.0, "seconds a process waits for the others at a collective (checkpoint "
                               "save, evaluation, each step) before failing with a message naming the phase")
    eval_kimg: float = _opt(0.0, "FID evaluation interval in kimg (0 = off)")
    eval_num: int = _opt(1000, "generated (and real) images per periodic evaluation")
    eval_network: str = _opt("", "Inception TorchScript file for --eval-kimg; empty = $GAN_STUDIO_INCEPTION or the metrics extra")
    resume: bool = _opt(True, "resume from the latest checkpoint in --out if there is one")
    cond: bool = _opt(False, "class-conditional G and D (projection discriminator) on the dataset's labels "
                      "(data_prep --labels; the built-in OpenMoji set has its emoji groups)")

    def __post_init__(self) -> None:
        if self.family not in ("progan", "stylegan_lite"):
            raise ValueError(f"--family must be progan or stylegan_lite, got {self.family!r}")
        if self.loss not in ("", "wgan_gp", "logistic_r1"):
            raise ValueError(f"--loss must be wgan_gp or logistic_r1, got {self.loss!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed-precision must be one of {MIXED_PRECISION}")
        positive = ("kimg", "batch_size", "g_lr", "d_lr", "grad_accum", "checkpoint_kimg", "sample_kimg",
                    "sample_count", "log_every", "keep_checkpoints", "stable_kimg", "ema_half_life_kimg",
                    "sync_every", "dist_timeout")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.mixing_prob <= 1.0:
            raise ValueError(f"--mixing-prob must be in [0, 1], got {self.mixing_prob}")
        if self.fade_kimg < 0 or self.workers < 0 or self.eval_kimg < 0:
            raise ValueError("--fade-kimg, --workers and --eval-kimg must be >= 0")
        if self.augment not in AUGMENT:
            raise ValueError(f"--augment must be one of {AUGMENT}, got {self.augment!r}")
        parse_policy(self.augment_policy)
        if not 0.0 <= self.ada_target <= 1.0:
            raise ValueError(f"--ada-target must be in [0, 1], got {self.ada_target}")
        if not self.ada_kimg > 0:
            raise ValueError(f"--ada-kimg must be > 0, got {self.ada_kimg}")
        for name in ("ada_interval", "r1_every", "gp_every"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_num < 2:
            raise ValueError(f"--eval-num must be >= 2, got {self.eval_num}")
        parse_batch_sizes(self.batch_sizes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


# Training defaults per (family, preset), applied by train.py as flag defaults (explicit flags win).
# Paper presets keep the papers' settings (the TrainConfig defaults). The CPU recipe for demo-64 and
# the measurements that chose it are in the README ("A CPU recipe for 64x64").
_DEMO_64 = {"batch_size": 32, "fade_kimg": 30.0, "stable_kimg": 30.0, "channels_last": True,
            "checkpoint_kimg": 10.0, "sample_kimg": 10.0, "eval_kimg": 20.0, "workers": 1}
RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("progan", "demo-64"): dict(_DEMO_64),  # WGAN-GP every step, no augmentation: see the README ablation
    # StyleGAN-lite takes ProGAN's loss too, as StyleGAN did for CelebA-HQ (Karras et al. 2019, appendix C):
    # with the non-saturating loss + R1 (+ ADA) its layouts collapsed at 32 px in every variant tried.
    ("stylegan_lite", "demo-64"): {**_DEMO_64, "loss": "wgan_gp"},
}


def recipe(family: str, preset: str) -> dict[str, Any]:
    """The recommended flag defaults for ``family``/``preset`` ({} where the TrainConfig defaults apply)."""
    return dict(RECIPES.get((family, preset), {}))


def parse_batch_sizes(spec: str) -> dict[int, int]:
    """``'4:64,8:32'`` -> ``{4: 64, 8: 32}``."""
    result: dict[int, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        try:
            res, batch = (int(v) for v in item.split(":"))
        except ValueError:
            raise ValueError(f"--batch-sizes entries must look like RES:BATCH, got {item!r}") from None
        if res < 4 or res & (res - 1) or batch < 1:
            raise ValueError(f"--batch-sizes: bad entry {item!r}")
        result[res] = batch
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"help": f"{f.metadata['help']} (default: {f.default!r})", "default": f.default}
        if isinstance(f.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(f.default)
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)


def from_namespace(namespace: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(namespace).items() if k in names})
