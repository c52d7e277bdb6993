"""Class-conditional training together with main's training tools: feature matching (Salimans et al. 2016,
section 3.1), the unrolled D (Metz et al. 2017, section 2), the training monitor (r_v, ADA section 2) and
the held-out split, whose subset must keep the labels the metrics read.

Each test records the labels a (stand-in or real) network receives and compares them with the labels the
test gave or derived itself: the reals' own labels for D on reals, the class weights' draw for fakes.
"""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from families import FAMILIES
from progan.metrics.evaluation import labels_like_dataset
from progan.training.monitor import HeldOutSplit, TrainingMonitor
from progan.training.step import StepContext, discriminator_step, generator_step
from progan.training.tricks import feature_matching_loss, unrolled_context

from train_utils import assert_states_equal

CLASSES = ("a", "b")
TINY = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=CLASSES)


def _ctx(g, d, **extra) -> StepContext:
    return StepContext(generator=g, discriminator=d, loss=extra.pop("loss", "wgan_gp"), stage=2, alpha=1.0,
                       latent_dim=TINY.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                       backward=lambda loss: loss.backward(), **extra)


class RecordingCritic(nn.Module):
    """A conditional 'discriminator': features are the pixels, the score their mean plus the label.
    It refuses a call without labels of the batch's size and records (images, labels) of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, images, *, stage=None, alpha=1.0, labels=None, features=False):
        assert labels is not None and labels.shape == (images.shape[0],), "a conditional D needs labels [N]"
        self.calls.append((images.detach().clone(), labels.clone()))
        f = images.flatten(1) * self.scale
        scores = f.mean(dim=1, keepdim=True) + labels[:, None].float()
        return (scores, f) if features else scores


def test_feature_matching_binds_reals_and_fakes_to_their_own_labels():
    torch.manual_seed(0)
    g = FAMILIES["progan"].generator_cls(TINY)
    d = RecordingCritic()
    # class weights [0, 1]: every fake is class 1; the reals are all class 0, so a mix-up shows
    ctx = _ctx(g, d, feature_matching=2.0, class_weights=torch.tensor([0.0, 1.0]))
    reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
    terms = generator_step(ctx, 4, 1, reals=reals, labels=[torch.zeros(4, dtype=torch.long)])
    (real_images, real_labels), (fake_images, fake_labels) = d.calls
    assert torch.equal(real_images, reals[0]) and torch.equal(real_labels, torch.zeros(4, dtype=torch.long))
    assert torch.equal(fake_labels, torch.ones(4, dtype=torch.long))
    expected = 2.0 * feature_matching_loss(real_images.flatten(1), fake_images.flatten(1))  # "replace" mode
    torch.testing.assert_close(terms["g_loss"], expected)


def _unrolled_setup():
    torch.manual_seed(0)
    g, d = FAMILIES["progan"].generator_cls(TINY), FAMILIES["progan"].discriminator_cls(TINY)
    opt_d = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.0, 0.99), eps=1e-8)
    ctx = _ctx(g, d, loss="logistic_r1", class_weights=torch.tensor([1.0, 1.0]))
    reals, labels = [torch.rand(4, 3, 16, 16) * 2 - 1], [torch.tensor([0, 1, 1, 0])]
    return d, opt_d, ctx, reals, labels


def test_unrolled_copy_trains_on_the_reals_labels():
    d, opt_d, ctx, reals, labels = _unrolled_setup()
    rng = torch.get_rng_state()
    g_ctx = unrolled_context(ctx, opt_d, reals, steps=2, discriminator_step=discriminator_step, labels=labels)
    torch.set_rng_state(rng)
    for _ in range(2):  # the real D with the same labels and latents
        discriminator_step(ctx, reals, labels)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
    assert_states_equal(g_ctx.discriminator.state_dict(), d.state_dict())
    # and the labels matter: other labels give another copy
    d2, opt_d2, ctx2, _, _ = _unrolled_setup()
    other = unrolled_context(ctx2, opt_d2, reals, steps=2, discriminator_step=discriminator_step,
                             labels=[1 - labels[0]])
    assert not torch.equal(other.discriminator.blocks[0].projection.embed.linear.weight,
                           g_ctx.discriminator.blocks[0].projection.embed.linear.weight)


class _LabelledCopier(nn.Module):
    """A conditional 'generator' returning given images for its latents; records the labels it got."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images, self.labels = images, None

    def forward(self, z, *, stage, alpha, labels=None):
        assert labels is not None and labels.shape == (z.shape[0],)
        self.labels = labels.clone()
        return self.images[: z.shape[0]]


def test_monitor_gives_fakes_and_d_the_reals_labels():
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=gen) for _ in range(30)]
    labels = torch.arange(30) % 3
    data = [(image, label) for image, label in zip(images, labels)]  # what ImageDataset(with_labels=True) yields
    split = HeldOutSplit(len(data), 6, seed=0)
    monitor = TrainingMonitor(latent_dim=4, num=8, seed=0, train_indices=split.train, heldout_indices=split.heldout)
    reals = torch.stack([images[i] for i in monitor.real_indices]).float() / 127.5 - 1
    g, d = _LabelledCopier(reals), RecordingCritic()
    signals = monitor(g, d, data, stage=1, alpha=1.0, device=torch.device("cpu"))
    real_labels = labels[monitor.real_indices]
    assert torch.equal(g.labels, real_labels)                                   # fakes of the reals' classes
    assert signals["diversity"] == pytest.approx(1.0, rel=1e-6)
    held_labels = labels[split.heldout[:8]]
    assert [y.tolist() for _, y in d.calls] == [real_labels.tolist(), held_labels.tolist(), real_labels.tolist()]
    # r_v by hand from the critic's closed form (mean pixel + label)
    held = torch.stack([images[i] for i in split.heldout[:8]]).float() / 127.5 - 1
    m = [float((x.flatten(1).mean(1) + y.float()).mean()) for x, y in
         ((reals, real_labels), (held, held_labels), (reals, real_labels))]
    assert m[0] == m[2] and np.isnan(signals["r_v"])  # fakes are the training reals: D cannot separate them


class _Labelled(torch.utils.data.Dataset):
    """What the metrics read of a labelled data_prep dataset: channels, class names, labels."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels, self.class_names, self.channels, self.num_images = labels, ("x", "y", "z"), 4, len(labels)

    def __len__(self) -> int:
        return 2 * self.num_images  # with x-flip

    def __getitem__(self, index):
        return torch.zeros(4, 8, 8, dtype=torch.uint8), torch.tensor(int(self.labels[index % self.num_images]))


def test_held_out_subset_keeps_channels_and_class_distribution():
    labels = np.array([0] * 10 + [1] * 30 + [2] * 60, dtype=np.int64)
    dataset = _Labelled(labels)
    split = HeldOutSplit(100, 20, seed=3)
    subset = split.training_subset(dataset)
    assert subset.channels == 4 and subset.class_names == ("x", "y", "z")
    np.testing.assert_array_equal(subset.labels, labels[split.train])
    for i in (0, len(subset) - 1):  # items pass through unchanged, mirrors included
        assert int(subset[i][1]) == labels[split.train[i % len(split.train)]]
    drawn = labels_like_dataset(subset, 20000, seed=1)
    expected = np.bincount(labels[split.train], minlength=3) / len(split.train)
    np.testing.assert_allclose(np.bincount(drawn.numpy(), minlength=3) / 20000, expected, atol=0.015)


@pytest.mark.slow
def test_conditional_run_with_holdout_monitor_and_tricks(tmp_path):
    """A tiny --cond run with the held-out split, the monitor, feature matching, the unrolled D, historical
    averaging, spectral norm and periodic metrics (stand-in features): every signal is logged and finite."""
    import json
    import math

    from accelerate import Accelerator
    from PIL import Image

    import data_prep
    from metric_utils import StandInFeatures
    from progan.metrics.evaluation import PeriodicEvaluator
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(12):
            image = np.full((16, 16, 3), 30, np.uint8)
            image[..., channel] = 200
            image[rng.integers(0, 8):, :4] = 0
            Image.fromarray(image).save(tmp_path / "src" / name / f"{i:02d}.png")
    data = data_prep.prepare(tmp_path / "src", tmp_path / "data", resolution=16, labels="folders",
                             progress=False, workers=1)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), kimg=0.04,
                         batch_size=4, fade_kimg=0.01, stable_kimg=0.01, checkpoint_kimg=10, sample_kimg=0.02,
                         eval_kimg=0.04, eval_num=8, workers=0, cond=True, holdout=4, monitor_num=6,
                         feature_matching=1.0, unrolled_steps=1, historical_averaging=0.1, spectral_norm=True)
    acc = Accelerator(cpu=True)
    evaluator = PeriodicEvaluator(acc, num=8, data_label=str(data), network=StandInFeatures(),
                                  cache_dir=tmp_path / "cache")
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(data, r, with_labels=True),
                      accelerator=acc, evaluator=evaluator)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    signals = [r for r in records if "r_v" in r]
    assert signals and all(math.isfinite(r["r_v"]) and r["diversity"] > 0 for r in signals)
    assert any("g_feature_matching" in r for r in records) and any("d_historical" in r for r in records)
    assert any(math.isfinite(r.get("fid", math.nan)) for r in records)
    assert trainer.generator_ema.config.class_names == ("blue", "red")
