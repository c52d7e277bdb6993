"""A run whose data loader has worker processes exits when it is done (issue 20 follow-up).

The workers ignore SIGTERM on purpose (a scheduler signals the whole process group, and the main
process must save first), so multiprocessing's exit hook cannot terminate() them: if the trainer kept
its loader iterator past ``train()``, the process printed "done" and then waited on its idle worker
forever. Seen in the recipe runs of session 6; this test hung until its timeout with the fix removed.
"""
from __future__ import annotations

import subprocess

import pytest

from train_utils import make_image_folder, run_train, train_args


@pytest.mark.slow
def test_training_with_loader_workers_exits_when_done(tmp_path):
    data = make_image_folder(tmp_path / "images")
    args = train_args("progan", data, tmp_path / "run", workers="1", kimg="0.08")
    try:
        result = run_train(args, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("train.py with --workers 1 did not exit within 240 s after its 0.08 kimg (a loader worker kept it alive)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "export").is_dir()
