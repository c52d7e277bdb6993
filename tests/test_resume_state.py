"""Everything a checkpoint holds arrives back on resume (``progan/training/resume.py``).

A field that is saved but not restored (or restored from the wrong key) is invisible to a resume
that only checks weights: the run continues, and only later does something go wrong (a best-FID
export overwritten by a worse model, ADA restarting at p = 0, the sample latents changing). So the
test sets every saved scalar to a value no fresh trainer has, trains two steps so the optimizers
have moments, saves, resumes in a fresh trainer, and requires the resumed trainer's own state to be
the saved state, entry by entry, bit for bit, with no entry left at its fresh value.
"""
from __future__ import annotations

import math

import pytest
import torch
from accelerate import Accelerator

from data_prep import open_dataset
from families import FAMILIES
from progan.training.options import TrainConfig
from progan.training.trainer import Trainer
from train_utils import assert_states_equal, load_state, make_image_folder

# the saved scalars and tensors set by hand below; a fresh trainer has other values for each
SET_BY_HAND = ("images_seen", "step", "consumed", "best_fid", "augment_p", "opt_lod", "sample_z")


@pytest.fixture
def build(tmp_path):
    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, workers=0, loss="logistic_r1", augment="ada", historical_averaging=0.5,
                         kimg=0.008, checkpoint_kimg=10, sample_kimg=10, progressive=False)

    def make() -> Trainer:
        return Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                       accelerator=Accelerator(cpu=True))
    return make


def test_every_saved_entry_arrives_back_on_resume(build):
    first = build()
    first.train()                                   # two steps: Adam moments, EMA, history sums exist
    first.images_seen, first.step, first.consumed = 1234, 77, 1300
    first.best_fid = 42.5
    first.ada.p = first.augment.p = 0.37
    first._opt_lod = 1.5
    first.sample_z = torch.randn_like(first.sample_z)
    first._ada_signs += torch.tensor([5.0, 12.0], dtype=torch.float64)
    saved, saved_rank = first._state(), first._rank_state()
    path = first.save()
    assert_states_equal(load_state(path), saved)    # what was written is what the trainer held

    fresh = build()
    fresh_state = fresh._state()
    for key in SET_BY_HAND:                         # each value differs from a fresh trainer's: the test can fail
        same = (torch.equal(saved[key], fresh_state[key]) if isinstance(saved[key], torch.Tensor)
                else saved[key] == fresh_state[key])
        assert not same, key
    assert fresh.try_resume() == path
    assert_states_equal(fresh._state(), saved)
    resumed_rank = fresh._rank_state()
    assert_states_equal({k: resumed_rank[k] for k in ("torch_rng", "weights_digest", "ada_signs")},
                        {k: saved_rank[k] for k in ("torch_rng", "weights_digest", "ada_signs")})


def test_a_checkpoint_from_before_best_fid_resumes_with_none(build):
    first = build()
    first.best_fid = 42.5
    path = first.save()
    state = load_state(path)
    del state["best_fid"]                           # checkpoints older than --eval-kimg
    torch.save(state, path / "state.pt")
    resumed = build()
    assert resumed.try_resume() == path
    assert resumed.best_fid == math.inf
