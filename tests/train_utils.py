"""Helpers for the training tests: a tiny image folder and subprocess runs of train.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_image_folder(path: Path, count: int = 24, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = np.full((size, size, 3), 40, np.uint8)
        img[..., i % 3] = 220
        y, x = rng.integers(0, size // 2, 2)
        img[y:y + size // 2, x:x + size // 2] = rng.integers(0, 255, 3)
        Image.fromarray(img).save(path / f"{i:03d}.png")
    return path


def train_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return env


def train_args(family: str, data: Path, out: Path, **overrides) -> list[str]:
    options = {"family": family, "preset": "tiny", "data": str(data), "out": str(out), "kimg": 0.2,
               "batch-size": 4, "fade-kimg": 0.04, "stable-kimg": 0.04, "checkpoint-kimg": 0.1,
               "sample-kimg": 0.1, "workers": 0, "log-every": 5, **overrides}
    # True is a bare switch (--channels-last); anything else is "--flag value"
    return [item for k, v in options.items() for item in ((f"--{k}",) if v is True else (f"--{k}", str(v)))]


def run_train(args: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=train_env(),
                          capture_output=True, text=True, timeout=timeout)


def load_state(checkpoint: Path, *, clock: bool = False) -> dict:
    """A checkpoint's shared state. Without ``clock=True`` the run clock (cumulative wall and CPU
    seconds, ``progress.RunClock``) is left out: two runs of the same training differ only there, so
    bit-exact comparisons of resumed against uninterrupted runs compare everything else."""
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    if not clock:
        state.pop("clock", None)
    return state


def assert_states_equal(a, b, path: str = "") -> None:
    """Recursive bit-exact comparison of checkpoint states (tensors, dicts, lists, numbers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"differs at {path}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"keys differ at {path}"
        for k in a:
            assert_states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"length differs at {path}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_states_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"differs at {path}: {a!r} != {b!r}"


def tiny_trainer(tmp_path, family: str = "progan", **options):
    """A Trainer on 8 generated 16 px images, tiny preset, batch 4, CPU, no monitor: for options checked by effect."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from families import FAMILIES
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family=family, preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, **options)
    return Trainer(config, FAMILIES[family], lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))
