"""Sample order across processes in the distributed evaluation (progan/metrics/evaluation.py).

FID, KID and precision/recall treat samples as a set, so comparing metrics between 1 and 2
processes cannot see a reordering. Here the order itself is checked: ``gather_in_order`` runs as a
real collective among threads (a stand-in accelerator whose ``gather`` exchanges tensors through a
barrier), and every process's shard of generated features, gathered back, equals the features a
single process computes for samples 0..num-1 -- sample i always uses latent i, and with a
conditional generator also class ``labels[i]``, whichever rank and batch position draws it.
"""
from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from families import FAMILIES
from metric_utils import StandInFeatures
from progan.metrics.evaluation import gather_in_order
from progan.metrics.features import generated_features
from rank_threads import ThreadAccelerator, run_ranks


def _collective(world: int, work) -> list:
    """Run ``work(accelerator)`` on ``world`` threads; return each rank's result."""
    exchange, barrier = {}, threading.Barrier(world, timeout=30)
    return run_ranks(world, lambda rank: work(ThreadAccelerator(rank, world, exchange, barrier)), barrier, timeout=60)


@pytest.mark.parametrize("world, num", [(2, 6), (2, 7), (3, 7), (4, 5)])
def test_gather_in_order_restores_sample_order(world, num):
    def work(acc):
        mine = torch.tensor([[float(i), -float(i)] for i in range(acc.process_index, num, world)])  # row = sample id
        return gather_in_order(acc, mine, num)

    for gathered in _collective(world, work):  # every process gets the full, ordered result
        assert gathered.shape == (num, 2)
        assert gathered[:, 0].tolist() == list(range(num))
        assert gathered[:, 1].tolist() == [-float(i) for i in range(num)]


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_generated_features_equal_the_single_process_ones(world):
    torch.manual_seed(0)
    family = FAMILIES["progan"]  # no per-pixel noise: sample i is one image however work is split
    generator = family.generator_cls(family.presets["tiny"]).eval()
    network = StandInFeatures()
    num = 7
    single = generated_features(generator, network, num=num, batch_size=3, seed=4)

    def work(acc):
        local = generated_features(generator, network, num=num, batch_size=2, seed=4,
                                   indices=range(acc.process_index, num, world))
        return gather_in_order(acc, local, num)

    for gathered in _collective(world, work):
        torch.testing.assert_close(gathered, single, rtol=1e-5, atol=1e-6)
    # and the check has teeth: the features of different samples differ
    assert (single[1:] - single[:-1]).abs().amax(dim=1).min() > 1e-4


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_conditional_features_use_each_samples_own_label(world):
    """A conditional ProGAN and labels that are not periodic in the rank: rank r's share r, r + world, ...
    (batch size 2) must draw sample i with labels[i], not with the label at its position in the batch, so
    the gathered features equal the single-process ones; and the labels matter (each one changed, every row moves)."""
    torch.manual_seed(0)
    family = FAMILIES["progan"]
    config = dataclasses.replace(family.presets["tiny"], class_names=("a", "b", "c"))
    generator = family.generator_cls(config).eval()
    network = StandInFeatures()
    num = 8  # every batch of every share is full: the same shapes, only the labels can differ
    labels = torch.tensor([2, 0, 1, 1, 0, 2, 2, 0])
    single = generated_features(generator, network, num=num, batch_size=num, seed=4, labels=labels)

    def work(acc):
        local = generated_features(generator, network, num=num, batch_size=2, seed=4, labels=labels,
                                   indices=range(acc.process_index, num, world))
        return gather_in_order(acc, local, num)

    for gathered in _collective(world, work):  # another batch size may round a pixel to the next level: ~1e-5
        torch.testing.assert_close(gathered, single, rtol=0, atol=1e-4)
    shifted = generated_features(generator, network, num=num, batch_size=num, seed=4, labels=(labels + 1) % 3)
    assert (shifted - single).abs().amax(dim=1).min() > 1e-4   # every sample's label changed, so every row moves
