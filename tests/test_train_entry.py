"""train.py as an entry point, in process: what it does on import under the stop-signal launcher, the
--dry-run memory estimate's options, the fp16-on-CPU refusal, and ``python train.py`` exiting with main's
status. Lines no fast test ran before (the subprocess versions are slow)."""
from __future__ import annotations

import importlib.util
import json
import os
import runpy
import signal
import sys
from pathlib import Path

import pytest
import torch

import train

TRAIN = Path(train.__file__)


def _import_train_afresh(name: str = "train_entry_probe"):
    spec = importlib.util.spec_from_file_location(name, TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_under_the_launcher_train_py_announces_its_pid_once_it_catches_stop_signals(tmp_path, monkeypatch,
                                                                                      restore_signals):
    """With $GAN_STUDIO_STOP_READY_DIR set (by progan.training.launch), importing train.py installs the
    SIGTERM/SIGUSR1 handlers and writes ``<dir>/<pid>``, the launcher's cue to forward signals to it;
    a second announcement of the same pid is not an error; without the variable nothing is written."""
    from progan.training.launch import READY_DIR_ENV

    monkeypatch.delenv(READY_DIR_ENV, raising=False)
    _import_train_afresh()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(READY_DIR_ENV, str(tmp_path))
    module = _import_train_afresh()
    assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())]
    handler = signal.getsignal(signal.SIGTERM)
    handler(signal.SIGTERM, None)
    assert module.PENDING_SIGNALS == [signal.SIGTERM]          # the handler records, the trainer acts
    _import_train_afresh()                                     # the pid announced already: no error
    assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())]


def test_dry_run_estimates_memory_for_the_processes_asked_and_at_least_one(tmp_path, capsys):
    """``--dry-run --estimate-processes 3``: the JSON's estimate and the table on stderr are for 3
    processes; 0 is taken as 1 (a run has at least one process); ``--no-estimate-memory`` traces none."""
    base = ["--family", "progan", "--preset", "tiny", "--batch-size", "4", "--out", str(tmp_path / "run"), "--dry-run"]
    for asked, used in ((3, 3), (0, 1)):
        assert train.main([*base, "--estimate-processes", str(asked)]) == 0
        out, err = capsys.readouterr()
        memory = json.loads(out)["memory_estimate_bytes"]
        assert memory["processes"] == used and memory["batch_size"] == 4
        assert f"{used} process(es)" in err and "total peak per process" in err
    assert train.main([*base, "--no-estimate-memory"]) == 0
    out, err = capsys.readouterr()
    assert "memory_estimate_bytes" not in json.loads(out) and "total peak" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed with a CUDA GPU")
def test_fp16_without_a_gpu_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """Accelerate would silently train fp16 in fp32 on a CPU: train.py refuses, exit 2, and names bf16,
    before any Trainer is built (a stand-in fails the test if one is)."""
    monkeypatch.setattr("progan.training.trainer.Trainer", lambda *a, **k: pytest.fail("a Trainer was built"))
    assert train.main(["--family", "progan", "--preset", "tiny", "--mixed-precision", "fp16",
                       "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "error: --mixed-precision fp16 needs a CUDA GPU; on CPU use bf16 or no"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_python_train_py_exits_with_mains_status(tmp_path, monkeypatch, capsys, restore_signals):
    monkeypatch.setattr(sys, "argv", ["train.py", "--family", "progan", "--preset", "tiny", "--out", str(tmp_path),
                                      "--dry-run", "--no-estimate-memory", "--monitor-num", "1"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(TRAIN), run_name="__main__")
    assert exit_.value.code == 2 and "--monitor-num" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", sys.argv[:-2])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(TRAIN), run_name="__main__")
    assert exit_.value.code == 0 and json.loads(capsys.readouterr().out)["train"]["family"] == "progan"
