"""Cluster behaviour with real processes: `python -m progan.training.launch` (accelerate launch + torchrun)
with 2 CPU processes on gloo.

- A stop signal to the *launcher* (SIGUSR1 as SLURM's --signal sends, SIGTERM as its time limit
  sends) saves a checkpoint, every process exits 0, none is left behind, and the rerun continues bit
  for bit like a run that was never stopped.
- Ranks that see different checkpoints fail together with one line, not a hang.
- A rank stuck before a collective makes the others fail after --dist-timeout with the phase named.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from progan.training.checkpoint import latest_checkpoint, list_checkpoints
from train_utils import ROOT, assert_states_equal, load_state, make_image_folder, run_train, train_args, train_env

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], log: Path, *, script: Path = ROOT / "train.py", **env: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "progan.training.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(script), *args]
    with open(log, "w") as out:  # a file, not a pipe: tqdm output must never block the processes
        return subprocess.Popen(command, cwd=ROOT, env={**train_env(), "PET_SHUTDOWN_TIMEOUT": "5", **env},
                                stdout=out, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
        raise AssertionError(f"launcher still running after {timeout} s:\n{log.read_text()[-3000:]}")
    return log.read_text()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _workers(launcher: psutil.Process) -> list[psutil.Process]:
    return [c for c in launcher.children() if "LOCAL_RANK" in c.environ()]


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM], ids=["USR1", "TERM"])
def test_stop_signal_to_launcher_saves_exits_zero_and_resumes_bit_exactly(tmp_path, signum):
    data = make_image_folder(tmp_path / "data")
    options = {"kimg": 5.0, "checkpoint-kimg": 10, "log-every": 1, "sync-every": 2}
    stopped_log = tmp_path / "stopped.log"
    proc = _launch(train_args("progan", data, tmp_path / "stopped", **options), stopped_log)
    launcher = psutil.Process(proc.pid)
    deadline = time.time() + 180
    while not (tmp_path / "stopped" / "log.jsonl").exists():  # both ranks are in the training loop
        assert proc.poll() is None and time.time() < deadline, stopped_log.read_text()[-3000:]
        time.sleep(0.05)
    workers = _workers(launcher)
    assert len(workers) == 2
    family = [p.pid for w in workers for p in (w, *w.children(recursive=True))]
    proc.send_signal(signum)
    output = _finish(proc, stopped_log)
    assert proc.returncode == 0, output[-3000:]          # the launcher exits 0 only if both workers did
    assert "stop requested: saved checkpoint" in output
    time.sleep(1)
    assert not [pid for pid in family if _alive(pid)], "orphaned worker processes"
    ckpt = latest_checkpoint(tmp_path / "stopped" / "checkpoints")
    stopped_at = load_state(ckpt)["images_seen"]
    assert 0 < stopped_at < 5000 and (ckpt / "rng-rank1.pt").exists()

    # the same command again, now to a little past the stop; and a run that never stopped
    options["kimg"] = stopped_at / 1000 + 0.048
    resumed_log, straight_log = tmp_path / "resumed.log", tmp_path / "straight.log"
    resumed = _launch(train_args("progan", data, tmp_path / "stopped", **options), resumed_log)
    output = _finish(resumed, resumed_log)
    assert resumed.returncode == 0 and f"resumed from {ckpt}" in output, output[-3000:]
    straight = _launch(train_args("progan", data, tmp_path / "straight", **options), straight_log)
    assert _finish(straight, straight_log) and straight.returncode == 0
    a_dir = latest_checkpoint(tmp_path / "straight" / "checkpoints")
    b_dir = latest_checkpoint(tmp_path / "stopped" / "checkpoints")
    a, b = load_state(a_dir), load_state(b_dir)
    assert a["images_seen"] == b["images_seen"] == stopped_at + 48
    a.pop("train_config"), b.pop("train_config")  # only --out differs
    assert_states_equal(a, b)
    for rank in (0, 1):
        assert_states_equal(torch.load(a_dir / f"rng-rank{rank}.pt", weights_only=True),
                            torch.load(b_dir / f"rng-rank{rank}.pt", weights_only=True))


def _one_process_checkpoint(tmp_path: Path, out: Path, seed: int) -> None:
    data = make_image_folder(tmp_path / "data")
    result = run_train(train_args("progan", data, out, kimg=0.048, seed=seed, **{"checkpoint-kimg": 0.048}))
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("rank1_view", ["missing", "different"])
def test_ranks_that_see_different_checkpoints_fail_together_with_one_line(tmp_path, rank1_view):
    out = tmp_path / "run"
    _one_process_checkpoint(tmp_path, out, seed=0)
    if rank1_view == "different":  # same checkpoint name, other weights (a stale copy on a node-local disk)
        _one_process_checkpoint(tmp_path, Path(f"{out}-rank1"), seed=1)
    log = tmp_path / "launch.log"
    start = time.time()
    proc = _launch(train_args("progan", tmp_path / "data", out, kimg=0.2, **{"dist-timeout": 120}), log,
                   script=ROOT / "tests" / "rank_quirks.py", GAN_STUDIO_TEST_QUIRK="local-out")
    output = _finish(proc, log, timeout=240)
    assert proc.returncode != 0
    assert time.time() - start < 100, "took as long as a collective timeout: a hang, not a clear error"
    if rank1_view == "missing":
        expected = "error: rank(s) 1 cannot see"
        assert f"{out}/checkpoints/ckpt-000000.048, the checkpoint rank 0 resumes from" in output
    else:
        expected = "error: processes disagree on weights_digest after resuming"
    assert output.count(expected) == 2, output[-3000:]  # the same line from both ranks
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["ckpt-000000.048"]  # nothing overwritten


def test_a_stuck_rank_fails_the_others_after_the_timeout_naming_the_phase(tmp_path):
    data = make_image_folder(tmp_path / "data")
    log = tmp_path / "launch.log"
    start = time.time()
    proc = _launch(train_args("progan", data, tmp_path / "run", kimg=0.2, **{"dist-timeout": 10}), log,
                   script=ROOT / "tests" / "rank_quirks.py", GAN_STUDIO_TEST_QUIRK="stuck-data")
    output = _finish(proc, log, timeout=240)
    assert proc.returncode != 0
    assert "error: rank 0: the other processes did not answer within --dist-timeout 10 s while" in output, output[-3000:]
    assert time.time() - start < 150


def test_collectives_per_step_are_the_gradients_w_avg_and_the_periodic_flags(tmp_path):
    """Per step: D's and G's flat gradient all-reduce and w_avg (not the constant noise/blur buffers);
    the stop/non-finite flags every --sync-every steps; all logged terms as one reduce on log steps."""
    import json

    data = make_image_folder(tmp_path / "data")
    out = tmp_path / "run"
    args = train_args("stylegan_lite", data, out, kimg=0.16, **{"log-every": 5, "sync-every": 4,
                                                               "checkpoint-kimg": 10, "sample-kimg": 10})
    log = tmp_path / "launch.log"
    proc = _launch(args, log, script=ROOT / "tests" / "rank_quirks.py", GAN_STUDIO_TEST_QUIRK="count-collectives")
    output = _finish(proc, log)
    assert proc.returncode == 0, output[-3000:]
    for rank in (0, 1):
        at_step = json.loads((out / f"collectives-rank{rank}.json").read_text())
        assert len(at_step) == 20                                         # 0.16 kimg / (2 x 4 images)
        per_step = [b - a for a, b in zip(at_step, at_step[1:])]          # step i + 1 ends between them
        expected = [3 + (step % 4 == 0) + (step % 5 == 0) for step in range(1, 20)]
        assert per_step == expected
