"""What each of 2 real CPU processes (gloo) read and what the gradient all-reduce gave them: values, not digests.

Identical weight digests on every rank (tests/test_distributed.py) hold just as well when every rank
reads the same images, or when the all-reduce sums the gradients instead of averaging them (each rank
applies the same wrong update). Here ``tests/rank_quirks.py`` (quirk ``record-data``) records, inside
``train.py`` on each rank, every uint8 batch the training loop read and every flat gradient just before
and just after the all-reduce. The test then checks, against the dataset opened on its own:

- the two ranks' shares of each epoch are disjoint and together are the whole dataset, once each
  (the data stream's contract: rank r takes global positions r, r + W, ... of each epoch's permutation),
  and the two epochs come in different orders;
- after every all-reduce both ranks hold the same gradient, equal to the MEAN of the two gradients the
  ranks computed on their own data (a sum would be twice that), and those two differed.
"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import torch

from train_utils import ROOT, make_image_folder, train_args, train_env

pytestmark = pytest.mark.slow

IMAGES, BATCH, WORLD = 24, 4, 2   # 3 steps of 2 x 4 images per epoch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rank-data")
    data = make_image_folder(tmp / "data", count=IMAGES)
    out = tmp / "run"
    # two epochs at a fixed 16 px (no growing: one loader), nothing written in between
    args = train_args("stylegan_lite", data, out, kimg=2 * IMAGES / 1000, **{
        "batch-size": BATCH, "no-progressive": True, "checkpoint-kimg": 10, "sample-kimg": 10})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(WORLD),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(ROOT / "tests" / "rank_quirks.py"), *args]
    done = subprocess.run(command, cwd=ROOT, env={**train_env(), "GAN_STUDIO_TEST_QUIRK": "record-data"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [torch.load(out / f"data-rank{r}.pt", weights_only=True) for r in range(WORLD)]
    from data_prep import open_dataset

    dataset = open_dataset(str(data), 16)
    return ranks, torch.stack([dataset[i] for i in range(len(dataset))])     # [IMAGES, 3, 16, 16] uint8


def _indices(batches: list[torch.Tensor], dataset: torch.Tensor) -> list[int]:
    """The dataset index of every image a rank read, found by comparing pixel values."""
    found = []
    for image in torch.cat(batches):
        equal = (dataset == image).flatten(1).all(dim=1).nonzero().flatten().tolist()
        assert len(equal) == 1, "an image read in training is not exactly one dataset image"
        found.append(equal[0])
    return found


def test_each_epoch_is_split_into_disjoint_shares_that_cover_the_data(recorded):
    ranks, dataset = recorded
    assert len({tuple(image.flatten().tolist()) for image in dataset}) == IMAGES   # images tell indices apart
    per_epoch = IMAGES // (BATCH * WORLD)
    read = []
    for r, record in enumerate(ranks):
        assert [b.shape for b in record["images"]] == [(BATCH, 3, 16, 16)] * 2 * per_epoch, r
        read.append(_indices(record["images"], dataset))
    share = IMAGES // WORLD
    orders = []
    for epoch in range(2):
        shares = [rank_read[epoch * share:(epoch + 1) * share] for rank_read in read]
        assert not set(shares[0]) & set(shares[1]), f"epoch {epoch}: both ranks read the same images"
        assert sorted(shares[0] + shares[1]) == list(range(IMAGES)), f"epoch {epoch}: not every image once"
        orders.append(shares)
    assert orders[0] != orders[1]                                  # a new permutation each epoch


def test_all_reduced_gradient_is_the_mean_of_the_ranks_own_gradients(recorded):
    ranks, _ = recorded
    calls = [record["grads"] for record in ranks]
    assert len(calls[0]) == len(calls[1]) >= 2 * 2 * IMAGES // (BATCH * WORLD)   # D and G, every step
    assert {what for what, _, _ in calls[0]} == {"Discriminator", "Generator"}
    for k, ((what, before0, after0), (what1, before1, after1)) in enumerate(zip(*calls)):
        assert what == what1, k
        assert not torch.allclose(before0, before1), f"call {k} ({what}): the ranks computed the same gradient"
        mean = (before0.double() + before1.double()) / 2
        assert torch.equal(after0, after1), f"call {k} ({what}): ranks disagree after the all-reduce"
        assert torch.allclose(after0.double(), mean, rtol=1e-5, atol=1e-7), \
            f"call {k} ({what}): not the mean (ratio {float(after0.double().norm() / mean.norm()):.3f})"
