"""The training health signals: the collapse signal (diversity in 8x8 RGB) and ADA's r_v."""
from __future__ import annotations

import json
import math

import pytest
import torch

from families import FAMILIES
from progan.training.monitor import HeldOutSplit, TrainingMonitor, layout_diversity, overfitting_ratio


def test_diversity_is_the_mean_pairwise_distance_in_8x8():
    # constant 8x8 images: the distance between images i and j is |c_i - c_j| * sqrt(3 * 64)
    values = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    images = values.view(4, 1, 1, 1).expand(4, 3, 32, 32)
    pairs = [abs(a - b) for i, a in enumerate(values.tolist()) for b in values.tolist()[i + 1:]]
    assert layout_diversity(images) == pytest.approx(sum(pairs) / len(pairs) * math.sqrt(192), rel=1e-6)
    assert layout_diversity(images[:1].expand(5, 3, 32, 32)) == 0.0  # a collapsed batch
    # fine texture below 8x8 does not count: a checkerboard averages out to its mean
    checker = (torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2 * 2.0 - 1.0
    assert layout_diversity(torch.stack([checker.expand(3, 32, 32), torch.zeros(3, 32, 32)])) < 1e-6
    with pytest.raises(ValueError, match="at least 2"):
        layout_diversity(images[:1])


def test_overfitting_ratio_closed_forms():
    train, gen = torch.full((8, 1), 2.0), torch.full((8, 1), -2.0)
    assert overfitting_ratio(train, train.clone(), gen) == 0.0         # unseen reals scored like seen ones
    assert overfitting_ratio(train, gen.clone(), gen) == 1.0           # unseen reals scored like fakes
    assert overfitting_ratio(train, torch.full((8, 1), 1.0), gen) == pytest.approx(0.25)
    assert math.isnan(overfitting_ratio(train, train, train))


def test_held_out_split_is_seeded_disjoint_and_holds_out_mirrors():
    split = HeldOutSplit(50, 7, seed=3)
    assert len(split.heldout) == 7 and sorted(split.heldout + split.train) == list(range(50))
    assert split.heldout == HeldOutSplit(50, 7, seed=3).heldout != HeldOutSplit(50, 7, seed=4).heldout
    assert split.heldout != list(range(43, 50))  # random, not the last ones by index
    dataset = list(range(100))  # an x-flipped dataset of 50 images: i + 50 is the mirror of i
    subset = split.training_subset(dataset)
    seen = {subset[i] % 50 for i in range(len(subset))}
    assert len(subset) == 86 and seen == set(split.train)
    with pytest.raises(ValueError, match="--holdout"):
        HeldOutSplit(5, 5, seed=0)


class _Copier(torch.nn.Module):
    """A 'generator' that returns given images for its latents (by row)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def forward(self, z, *, stage, alpha):
        return self.images[: z.shape[0]]


def _dataset(n=40, res=8):
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (3, res, res), dtype=torch.uint8, generator=g) for _ in range(n)]


def test_monitor_diversity_is_one_for_reals_and_zero_for_a_collapsed_generator():
    data = _dataset()
    split = HeldOutSplit(len(data), 10, seed=0)
    monitor = TrainingMonitor(latent_dim=4, num=8, seed=0, train_indices=split.train, heldout_indices=split.heldout)
    reals = torch.stack([data[i] for i in monitor.real_indices]).float() / 127.5 - 1
    critic = lambda x, stage, alpha: x.flatten(1).mean(1, keepdim=True)  # noqa: E731
    same = monitor(_Copier(reals), critic, data, stage=1, alpha=1.0, device=torch.device("cpu"))
    assert same["diversity"] == pytest.approx(1.0, rel=1e-6)
    assert math.isnan(same["r_v"])  # fakes are the training reals: D cannot separate them
    collapsed = monitor(_Copier(reals[:1].expand(8, -1, -1, -1)), critic, data, stage=1, alpha=1.0,
                        device=torch.device("cpu"))
    assert collapsed["diversity"] == 0.0
    # r_v from the same critic, computed by hand from the three score means
    held = torch.stack([data[i] for i in split.heldout[:8]]).float() / 127.5 - 1
    fakes = reals[:1].expand(8, -1, -1, -1)
    m = [float(critic(x, 1, 1).mean()) for x in (reals, held, fakes)]
    assert collapsed["r_v"] == pytest.approx((m[0] - m[1]) / (m[0] - m[2]), rel=1e-5)
    assert set(monitor.real_indices) <= set(split.train)


def test_signals_are_logged_and_do_not_change_training(tmp_path):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import load_state, make_image_folder

    data = make_image_folder(tmp_path / "data")
    states = {}
    for num in (0, 8):
        config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / f"m{num}"),
                             kimg=0.08, batch_size=4, fade_kimg=0.02, stable_kimg=0.02, checkpoint_kimg=10,
                             sample_kimg=0.02, workers=0, monitor_num=num, holdout=4)
        trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                          accelerator=Accelerator(cpu=True))
        trainer.train()
        states[num] = load_state(next((tmp_path / f"m{num}" / "checkpoints").iterdir()))
        records = [json.loads(line) for line in (tmp_path / f"m{num}" / "log.jsonl").read_text().splitlines()]
        signals = [r for r in records if "diversity" in r]
        if num == 0:
            assert signals == []
        else:  # the first grid at 0 kimg, then every 0.02 kimg
            assert [round(r["kimg"], 3) for r in signals] == [0.0, 0.02, 0.04, 0.06, 0.08]
            assert all(r["diversity"] > 0 and math.isfinite(r["r_v"]) for r in signals)
            assert {r["resolution"] for r in signals} == {4, 8, 16}
    for key in ("generator", "discriminator", "generator_ema"):
        for name, tensor in states[0][key].items():
            assert torch.equal(tensor, states[8][key][name]), (key, name)


def test_the_monitor_accepts_two_images_and_refuses_one():
    """Diversity compares images pairwise, so 2 is the smallest ``--monitor-num``: 2 latents and 2 reals
    (of 3 training images), while 1 is refused in one line."""
    monitor = TrainingMonitor(latent_dim=4, num=2, seed=0, train_indices=[5, 6, 7], heldout_indices=[0, 1, 2])
    assert monitor.z.shape == (2, 4) and len(set(monitor.real_indices)) == 2
    assert set(monitor.real_indices) <= {5, 6, 7} and monitor.heldout_indices == [0, 1]
    with pytest.raises(ValueError, match="--monitor-num must be >= 2"):
        TrainingMonitor(latent_dim=4, num=1, seed=0, train_indices=[5, 6, 7], heldout_indices=[0, 1, 2])


def test_the_trainers_split_holds_out_base_images_of_an_x_flipped_dataset(tmp_path):
    """--holdout 3 --xflip on 8 images (16 views): the trainer splits the 8 base images, not the 16 views,
    so the held-out indices are 3 base images and D trains on the other 5 and their mirrors (10 views)."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, holdout=3, seed=5, xflip=True, progressive=False)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r, xflip=True),
                      accelerator=Accelerator(cpu=True))
    trained_on = trainer._dataset(16)
    assert sorted(trainer._split.heldout + trainer._split.train) == list(range(8))
    assert len(trainer._split.heldout) == 3 and len(trained_on) == 10


class _LabelledCopier(torch.nn.Module):
    """A conditional 'generator' that records the labels it was given and returns zeros."""

    def forward(self, z, *, stage, alpha, labels):
        self.labels = labels
        return torch.zeros(z.shape[0], 3, 8, 8)


def test_conditional_signals_score_each_set_with_its_own_labels():
    """--cond: D sees the training reals with their classes, the held-out reals with *theirs* and the fakes
    with the training reals' classes cycled. Classes here: 1 for training images, 3 for held-out ones, and
    a critic whose score is the class it is given, so d_train = 1, d_val = 3, d_gen = 1 by construction."""
    images = _dataset()
    split = HeldOutSplit(len(images), 10, seed=1)
    held = set(split.heldout)
    data = [(image, 3 if i in held else 1) for i, image in enumerate(images)]
    monitor = TrainingMonitor(latent_dim=4, num=6, seed=2, train_indices=split.train, heldout_indices=split.heldout)
    critic = lambda x, stage, alpha, labels: labels.float().view(-1, 1) + 0 * x.flatten(1).mean(1, keepdim=True)  # noqa: E731
    generator = _LabelledCopier()
    signals = monitor(generator, critic, data, stage=1, alpha=1.0, device=torch.device("cpu"))
    assert (signals["d_train"], signals["d_val"], signals["d_gen"]) == (1.0, 3.0, 1.0)
    assert generator.labels.tolist() == [1] * 6
    assert len(monitor.heldout_indices) == 6 and set(monitor.heldout_indices) <= held
