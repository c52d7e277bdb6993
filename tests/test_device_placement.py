"""Tensors the training step, the trainer and the app's sampling create follow the run's (model's) device.

A tensor created without ``device=`` lands on the CPU: on a CPU-only machine that is the run's device, so
only a GPU run would crash (or silently compute on the CPU). The ``meta`` device makes the slip visible
here: the run's device is ``meta`` and every tensor created for it must be on it. (ADA's and DiffAugment's
transforms: the same check in test_ada.py and test_augment.py.)
"""
from __future__ import annotations

import contextlib

import torch
from accelerate import Accelerator
from torch import nn

import data_prep
from families import FAMILIES
from image_utils import labelled_source
from progan.training.options import TrainConfig
from progan.training.step import StepContext, _generate
from progan.training.trainer import Trainer

META = torch.device("meta")


def test_a_style_mixing_step_draws_both_latents_on_the_runs_device():
    """mixing_prob 1 always mixes (rand < 1): z and mix_z are [batch, latent_dim] on the run's device."""

    class Recorder(nn.Module):
        def forward(self, z, **kwargs):
            self.z, self.kwargs = z, kwargs
            return z

    g = Recorder()
    ctx = StepContext(generator=g, discriminator=nn.Identity(), loss="logistic_r1", stage=2, alpha=1.0,
                      latent_dim=5, device=META, autocast=contextlib.nullcontext, backward=lambda t: t.backward(),
                      mixing_prob=1.0, penalty=False)
    _generate(ctx, 3, training_w_avg=True)
    mix_z = g.kwargs["mix_z"]
    assert (g.z.device, g.z.shape) == (META, (3, 5))
    assert (mix_z.device, mix_z.shape) == (META, (3, 5))
    assert 1 <= g.kwargs["crossover"] < 2 * 2 + 2                      # a layer boundary of stage 2's 6 ws


class _MetaAccelerator(Accelerator):
    """An Accelerator whose device is ``meta``: what the trainer builds for the run must land there."""

    @property
    def device(self) -> torch.device:
        return META


def test_a_conditional_trainer_keeps_its_class_weights_on_the_runs_device(tmp_path):
    """--cond: the G-step label weights (one per class) are on the accelerator's device, where sample_labels
    draws the labels that G's embedding reads."""
    data = data_prep.prepare(labelled_source(tmp_path), tmp_path / "data", resolution=16, labels="folders",
                             progress=False, workers=1)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, cond=True, kimg=0.012, checkpoint_kimg=1.0, sample_kimg=1.0)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r, with_labels=True),
                      accelerator=_MetaAccelerator(cpu=True))
    assert (trainer.class_weights.device, trainer.class_weights.shape) == (META, (2,))   # blue, red


def test_the_apps_random_noise_maps_reach_the_synthesis_on_the_generators_device():
    """``generate_images(noise="random")`` draws each seed's noise maps on the CPU (the seed contract: the
    same maps on every device) and must move them to the generator's device before synthesis; a CUDA model
    handed CPU maps fails with a device mismatch. The tiny StyleGAN-lite is put on ``meta``; its synthesis is
    wrapped to record the devices and shapes of the maps it is handed (then runs on them for real, and returns
    CPU zeros of that output's shape so the uint8 conversion can run)."""
    from app.sampling import generate_images
    from model_utils import tiny_stylegan

    generator = tiny_stylegan().to(META)
    synthesis, calls = generator.synthesis.forward, []

    def recording(ws, **kwargs):
        calls.append((ws.device, [(n.device, tuple(n.shape)) for n in kwargs["noise"]]))
        return torch.zeros(synthesis(ws, **kwargs).shape)

    generator.synthesis.forward = recording
    r, resolutions = generator.config.resolution, generator.config.resolutions
    images = generate_images(generator, [0, 1, 2], noise="random", batch_size=2)
    assert images.shape == (3, r, r, generator.config.image_channels)
    assert len(calls) == 2                                            # seeds 0, 1 then seed 2
    for (ws_device, maps), batch in zip(calls, (2, 1)):
        assert ws_device == META
        # two noise layers per resolution, 4 px up to the model's, one map per seed of the batch
        expected = [(META, (batch, 1, resolutions[i // 2], resolutions[i // 2])) for i in range(2 * len(resolutions))]
        assert maps == expected
