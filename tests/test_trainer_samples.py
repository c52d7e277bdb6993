"""The trainer's outputs beside the weights, each checked against a value built by hand: its sample grid's
count, seed and pixels (small batches at an early stage, each latent drawn by hand), the evaluator it builds
for --eval-kimg (seed, count, network, cache), and the run clock that a resumed run counts on from.
(Split out of tests/test_trainer_options.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from families import FAMILIES
from progan.training.progress import RunClock
from progan.training.samples import save_sample_grid
from train_utils import tiny_trainer

# --- sample grids ------------------------------------------------------------------------------------

def _by_hand(generator, z: torch.Tensor, *, stage: int, alpha: float, full: int, columns: int) -> torch.Tensor:
    """Each latent alone through G (const noise), nearest-upsampled by repetition, NVIDIA's uint8
    conversion (x * 127.5 + 128, truncated), tiled row-major on a black canvas: [H, W, 3]."""
    tiles = []
    with torch.no_grad():
        for i in range(len(z)):
            kwargs = {"noise_mode": "const"} if hasattr(generator, "synthesis") else {}
            image = generator(z[i:i + 1], stage=stage, alpha=alpha, **kwargs)[0]
            factor = full // image.shape[-1]
            image = image.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
            tiles.append((image * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0))
    rows = math.ceil(len(z) / columns)
    canvas = torch.zeros(rows * full, columns * full, 3, dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * full:(r + 1) * full, c * full:(c + 1) * full] = tile
    return canvas


@pytest.mark.parametrize("family_name", ["progan", "stylegan_lite"])
def test_a_sample_grid_in_small_batches_at_an_early_stage_is_each_latent_by_hand(tmp_path, family_name):
    """5 latents in batches of 2 at the 8 px stage mid fade-in, shown at 16 px: every tile is its own
    latent's image (not another batch's), upsampled by pixel repetition, StyleGAN-lite's with its fixed
    noise maps (the same grid at every sample step); 3 columns, 2 rows."""
    family = FAMILIES[family_name]
    torch.manual_seed(0)
    generator = family.generator_cls(family.preset("tiny")).eval()
    with torch.no_grad():  # noise strengths start at 0; a trained generator's are not, so the grid's noise shows
        for name, p in generator.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.3)
    z = torch.randn(5, family.preset("tiny").latent_dim)
    path = tmp_path / "grid.png"
    assert save_sample_grid(generator, z, path, stage=1, alpha=0.25, full_resolution=16, batch_size=2)
    grid = torch.from_numpy(np.asarray(Image.open(path)).copy())
    assert grid.shape == (32, 48, 3)
    expected = _by_hand(generator, z, stage=1, alpha=0.25, full=16, columns=3)
    assert (grid.int() - expected.int()).abs().max() <= 1  # batched and one-by-one convolutions may round apart


def test_the_trainers_grid_has_sample_count_latents_of_its_seed(tmp_path):
    """--sample-count 5 --seed 3: the grid's latents are the first 5 normal draws of a generator seeded
    with 3, and the grid written before the first step shows exactly those 5 through G_ema."""
    trainer = tiny_trainer(tmp_path, "stylegan_lite", sample_count=5, seed=3)
    latent_dim = trainer.model_config.latent_dim
    torch.testing.assert_close(trainer.sample_z, torch.randn(5, latent_dim, generator=torch.Generator().manual_seed(3)),
                               rtol=0, atol=0)
    trainer.out.mkdir(parents=True)
    phase = trainer.schedule.phase(0)
    trainer._samples(phase)
    (path,) = (trainer.out / "samples").glob("grid-*.png")
    grid = torch.from_numpy(np.asarray(Image.open(path)).copy())
    expected = _by_hand(trainer.generator_ema, trainer.sample_z, stage=phase.stage, alpha=phase.alpha, full=16,
                        columns=3)
    assert grid.shape == expected.shape == (32, 48, 3)
    assert (grid.int() - expected.int()).abs().max() <= 1


def test_the_trainers_own_evaluator_scores_latents_of_the_runs_seed(tmp_path, monkeypatch):
    """--eval-kimg with no evaluator handed in: the trainer builds one from the run's options. --seed 3
    --eval-num 6 --eval-network F: an evaluation at stage 1, alpha 0.5 feeds G_ema latents 0..5 *of seed 3*
    (``latents_for_indices``, not seed 0's) at that stage and alpha, loads the network from F and caches the
    real statistics under the cache root's fid-stats; --seed 0 draws seed 0's."""
    from metric_utils import StandInFeatures
    from progan.metrics.features import latents_for_indices
    from progan.training.schedule import Phase

    loaded = []
    monkeypatch.setattr("progan.metrics.inception.load_feature_network",
                        lambda path=None, **kwargs: loaded.append(path) or StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    network_file = str(tmp_path / "inception.pt")
    drawn = {}
    for seed in (3, 0):
        trainer = tiny_trainer(tmp_path / f"seed{seed}", seed=seed, eval_kimg=0.1, eval_num=6, eval_network=network_file)
        seen = []
        trainer.generator_ema.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append((args[0].detach().clone(), dict(kwargs))), with_kwargs=True)
        trainer.out.mkdir(parents=True)                  # what train() does first
        trainer._evaluate(Phase(1, 0.5, 4), 0.0)
        latent_dim = trainer.model_config.latent_dim
        drawn[seed] = torch.cat([z for z, _ in seen])
        torch.testing.assert_close(drawn[seed], latents_for_indices(range(6), latent_dim, seed=seed), rtol=0, atol=0)
        assert all(kwargs == {"stage": 1, "alpha": 0.5} for _, kwargs in seen), seen[0][1]
    assert not torch.allclose(drawn[3], drawn[0])
    assert loaded == [network_file, network_file]
    assert list((tmp_path / "cache" / "fid-stats").glob("real-*.safetensors"))


# --- the run clock ---------------------------------------------------------------------------------

class _FakeTime:
    def __init__(self) -> None:
        self.wall, self.cpu = 1000.0, 50.0

    def time(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu

    def advance(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def test_a_clock_loaded_while_running_counts_on_from_the_loaded_sums(monkeypatch):
    """Loaded while running (a resume after ``start``), the clock counts from the loaded sums at the
    moment of loading, not from its own start: time before the load is not added on top of them."""
    import progan.training.progress as progress

    fake = _FakeTime()
    monkeypatch.setattr(progress, "time", fake)
    clock = RunClock()
    clock.start()
    fake.advance(30.0, 3.0)                                         # before the load: replaced by the loaded sums
    clock.load_state_dict({"wall_seconds": 500.0, "cpu_seconds": 70.0})
    assert clock.read() == (500.0, 70.0)
    fake.advance(10.0, 2.0)
    assert clock.read() == (510.0, 72.0)
    clock.stop()
    fake.advance(99.0, 9.0)                                         # stopped: nothing counts
    assert clock.read() == (510.0, 72.0) and clock.state_dict() == {"wall_seconds": 510.0, "cpu_seconds": 72.0}
    stopped = RunClock()                                            # loaded while stopped: stays stopped
    stopped.load_state_dict({"wall_seconds": 5.0, "cpu_seconds": 1.0})
    fake.advance(7.0, 7.0)
    assert stopped.read() == (5.0, 1.0)


