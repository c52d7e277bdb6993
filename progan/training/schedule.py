"""Progressive-growing schedule (Karras et al. 2018, section 2 and appendix A.1).

Training starts at 4x4. Each new resolution is first *faded in* over ``fade_kimg`` thousand real
images (alpha ramps linearly 0 -> 1) and then *stabilized* for ``stable_kimg`` thousand images; the
first resolution only stabilizes. After the last fade-in the final resolution trains until the end.
The position is a pure function of images seen, so a resumed run lands on the same stage and alpha.
With ``progressive=False`` every step trains the final resolution with alpha = 1.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Phase", "GrowthSchedule"]


@dataclass(frozen=True)
class Phase:
    stage: int          # active stage: resolution 4 * 2**stage
    alpha: float        # fade-in weight of the newest block, 1.0 when stable
    batch_size: int     # per-process batch size at this resolution

    @property
    def resolution(self) -> int:
        return 4 * 2**self.stage


@dataclass(frozen=True)
class GrowthSchedule:
    num_stages: int
    fade_kimg: float = 600.0
    stable_kimg: float = 600.0
    progressive: bool = True
    batch_sizes: tuple[int, ...] = (16,)  # per stage; the last entry repeats for higher stages

    def __post_init__(self) -> None:
        if self.fade_kimg < 0 or self.stable_kimg <= 0:
            raise ValueError("fade_kimg must be >= 0 and stable_kimg > 0")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError("batch sizes must be positive")

    def batch_size(self, stage: int) -> int:
        return self.batch_sizes[min(stage, len(self.batch_sizes) - 1)]

    def phase(self, images_seen: int) -> Phase:
        last = self.num_stages - 1
        if not self.progressive:
            return Phase(last, 1.0, self.batch_size(last))
        kimg = images_seen / 1000.0
        if kimg < self.stable_kimg:
            return Phase(0, 1.0, self.batch_size(0))
        kimg -= self.stable_kimg
        period = self.fade_kimg + self.stable_kimg
        stage = min(1 + int(kimg // period), last)
        into = kimg - (stage - 1) * period
        alpha = 1.0 if self.fade_kimg == 0 else min(1.0, into / self.fade_kimg)
        return Phase(stage, alpha, self.batch_size(stage))

    def stage_start_kimg(self, stage: int) -> float:
        """Images (in kimg) seen when ``stage`` begins its fade-in."""
        if stage == 0 or not self.progressive:
            return 0.0
        return self.stable_kimg + (stage - 1) * (self.fade_kimg + self.stable_kimg)
