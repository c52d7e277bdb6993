"""A stop during an evaluation or a sample grid gives way within one batch: the run saves, keeps nothing
of the evaluation (no partial real-feature cache, no metrics record) and does not wait for it."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from accelerate import Accelerator

import data_prep
from families import FAMILIES
from metric_utils import StandInFeatures
from progan.metrics.evaluation import PeriodicEvaluator, _polled, _StopPoll
from progan.metrics.features import compute_features
from progan.training.checkpoint import latest_checkpoint
from progan.training.options import TrainConfig
from progan.training.samples import save_sample_grid
from progan.training.trainer import Trainer
from train_utils import load_state, make_image_folder


class SignalAtBatch(StandInFeatures):
    """The stand-in network that sends this process SIGTERM during its `at`-th batch (the trainer's
    handler sets the stop flag), as a scheduler would while a long evaluation runs."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = super().forward(images)
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return features


# 12 reals and 12 generated in batches of 5: batches 1-3 embed the reals (cache miss), 4-6 the samples
@pytest.mark.parametrize("at, phase", [(2, "real"), (5, "generated")])
def test_a_stop_during_an_evaluation_saves_within_one_batch_and_keeps_nothing_of_it(tmp_path, restore_signals,
                                                                                  at, phase):
    data = make_image_folder(tmp_path / "images")
    out = tmp_path / "run"
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(out), kimg=0.2, batch_size=4,
                         fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=10, sample_kimg=10, workers=0,
                         log_every=5, eval_kimg=0.1, eval_num=12)
    accelerator = Accelerator(cpu=True, log_with="tensorboard", project_dir=config.out)
    network = SignalAtBatch(at)
    evaluator = PeriodicEvaluator(accelerator, num=12, data_label=str(data), network=network,
                                  cache_dir=tmp_path / "fid-stats", batch_size=5)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=accelerator, evaluator=evaluator)
    assert trainer.train() == out / "checkpoints"
    assert network.calls == at  # gave way right after the batch in which the stop arrived
    checkpoint = latest_checkpoint(out / "checkpoints")
    assert load_state(checkpoint)["images_seen"] == 100  # saved at the evaluation's step, 0.1 kimg
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert not [r for r in records if "fid" in r] and not (out / "export").exists()
    caches = list((tmp_path / "fid-stats").glob("*")) if (tmp_path / "fid-stats").exists() else []
    # a stop while embedding the reals leaves no cache (not a partial one); after them, the full one
    assert [c.suffix for c in caches] == ([] if phase == "real" else [".safetensors"])


class _TwoRanks:
    """Just enough of an Accelerator for one rank of two; `reduce` sums the flags of both ranks' round."""

    num_processes, device = 2, torch.device("cpu")

    def __init__(self, rounds: list[list[float]], rank: int) -> None:
        self.rounds, self.rank, self.calls = rounds, rank, 0

    def reduce(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        assert reduction == "sum"
        if len(self.rounds) <= self.calls:
            self.rounds.append([0.0, 0.0])
        self.rounds[self.calls][self.rank] = float(tensor[0])
        self.calls += 1
        return torch.tensor([sum(self.rounds[self.calls - 1])])


def test_every_process_polls_the_same_rounds_when_the_shares_differ_by_a_batch():
    rounds: list[list[float]] = []
    calls = []
    for rank, share in ((0, 65), (1, 64)):  # 129 images, batches of 64: 2 batches on rank 0, 1 on rank 1
        acc = _TwoRanks(rounds, rank)
        poll = _StopPoll(acc, lambda: False)
        images = torch.zeros(share, 3, 8, 8, dtype=torch.uint8)
        _polled(poll, acc, 129, 64, lambda after: compute_features(iter(images.split(64)), StandInFeatures(),
                                                                 after_batch=after))
        calls.append(acc.calls)
    assert calls == [2, 2]  # the collective calls line up: rank 1 pads its missing round


def test_a_sample_grid_gives_way_between_batches_and_writes_nothing(tmp_path):
    generator = FAMILIES["progan"].generator_cls(FAMILIES["progan"].preset("tiny")).eval()
    forwards = []
    generator.register_forward_hook(lambda *_: forwards.append(1))
    z = torch.randn(40, generator.config.latent_dim)
    path = tmp_path / "grid.png"
    written = save_sample_grid(generator, z, path, stage=0, alpha=1.0, full_resolution=16, batch_size=16,
                               should_stop=lambda: len(forwards) >= 1)
    assert written is False and not path.exists() and len(forwards) == 1
    assert save_sample_grid(generator, z, path, stage=0, alpha=1.0, full_resolution=16, batch_size=16)
    assert path.exists() and len(forwards) == 1 + 3
