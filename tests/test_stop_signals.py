"""A stop signal to `python -m progan.training.launch` at any moment ends cleanly (issue 20).

From the launcher's first line on, SIGTERM/SIGUSR1 end in one of two ways: before the first training
step, nothing is lost (no checkpoint is written, none was needed) and every process exits 0; after it,
a checkpoint is saved, every process exits 0 and the same command resumes from it. Checked on one
process (accelerate's plain subprocess launcher, which sets no LOCAL_RANK) and on two (--multi_gpu,
torchrun), at three moments:

- "launcher": as soon as the launcher catches the signal, i.e. while it is still importing;
- "worker": as soon as a worker process exists, before Python reaches train.py's first line;
- "training": once the training loop has logged.
"""
from __future__ import annotations

import ast
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from progan.training.checkpoint import latest_checkpoint
from train_utils import ROOT, load_state, make_image_folder, train_args, train_env

OPTIONS = {"kimg": 5.0, "checkpoint-kimg": 10, "sample-kimg": 10, "log-every": 1, "sync-every": 2}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(processes: int, args: list[str], log: Path) -> subprocess.Popen:
    multi = ["--multi_gpu"] if processes > 1 else []  # accelerate refuses --multi_gpu with one process
    command = [sys.executable, "-m", "progan.training.launch", *multi, "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(ROOT / "train.py"), *args]
    with open(log, "w") as out:  # a file, not a pipe: tqdm output must never block the processes
        return subprocess.Popen(command, cwd=ROOT, env={**train_env(), "PET_SHUTDOWN_TIMEOUT": "5"},
                                stdout=out, stderr=subprocess.STDOUT, text=True)


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (Linux: the SigCgt mask in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (signum - 1) & 1)


def _workers(launcher: psutil.Process) -> list[psutil.Process]:
    found = []
    for p in launcher.children(recursive=True):
        try:
            if any(part.endswith("train.py") for part in p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"exited {proc.returncode} before the moment:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.01)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    """Wait for the launcher, noting every process it starts meanwhile; none may outlive it."""
    launcher, family, deadline = psutil.Process(proc.pid), {proc.pid}, time.time() + timeout
    while proc.poll() is None:
        try:
            family.update(p.pid for p in launcher.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
        if time.time() > deadline:
            for pid in family:
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass
            proc.wait()
            raise AssertionError(f"launcher still running after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    time.sleep(0.5)
    alive = []
    for pid in family - {proc.pid}:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"processes left behind: {alive}"
    return log.read_text()


def test_the_launcher_catches_stop_signals_before_anything_slow_is_imported():
    """What runs before the handlers is tiny: the packages that `python -m` imports first import no torch,
    and launch.py's first statements after the docstring install the handlers (nothing slow before)."""
    probe = "import sys, progan.training; print([m for m in ('torch', 'accelerate', 'numpy', 'psutil') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=train_env(), capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
    body = ast.parse((ROOT / "progan" / "training" / "launch.py").read_text()).body[1:]  # after the docstring
    install = next(i for i, node in enumerate(body)
                   if isinstance(node, ast.If) and "signal.signal" in ast.unparse(node) and "__main__" in ast.unparse(node.test))
    imported = {alias.name for node in body[:install] if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported <= {"annotations", "signal", "threading"}, imported



_CHILD = """
import os, signal, sys, time
def note(signum, _frame):
    with open(sys.argv[2], "a") as f:
        f.write(f"{signum}\\n")
for s in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(s, note)
if sys.argv[1] != "-":  # announce, as train.py does once it catches the stop signals
    open(os.path.join(sys.argv[1], str(os.getpid())), "x").close()
while True:
    time.sleep(1)
"""


def test_the_launcher_gives_each_announced_worker_every_stop_signal_once(tmp_path, monkeypatch):
    """The launcher's delivery thread, on real child processes: a worker that announces after the first
    signal still gets it; a second signal reaches it too (the latest one, once each); a child that never
    announced gets none."""
    import threading

    from progan.training import launch

    monkeypatch.setattr(launch, "_REQUESTED", [])
    monkeypatch.setattr(launch, "_WAKE", threading.Event())
    ready = tmp_path / "ready"
    ready.mkdir()
    threading.Thread(target=launch._deliver, args=(ready,), kwargs={"poll": 0.02}, daemon=True).start()
    launch._record(signal.SIGUSR1)                       # before any worker announced
    worker, silent = tmp_path / "worker.txt", tmp_path / "silent.txt"
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, str(ready), str(worker)]),
                subprocess.Popen([sys.executable, "-c", _CHILD, "-", str(silent)])]

    def received(path: Path) -> list[int]:
        return [int(v) for v in path.read_text().split()] if path.exists() else []

    def wait_for(expected: list[int]) -> None:
        deadline = time.time() + 30
        while received(worker) != expected and time.time() < deadline:
            time.sleep(0.02)
        assert received(worker) == expected

    try:
        wait_for([signal.SIGUSR1])
        launch._record(signal.SIGTERM)
        wait_for([signal.SIGUSR1, signal.SIGTERM])
        time.sleep(0.3)                                  # time for a duplicate or a stray delivery
        assert received(worker) == [signal.SIGUSR1, signal.SIGTERM] and received(silent) == []
    finally:
        for child in children:
            child.kill()
            child.wait()



def test_a_multi_gpu_launch_leaves_the_stop_signals_to_the_launcher_and_the_rest_to_torchrun(monkeypatch, tmp_path):
    """``launch.main`` on a ``--multi_gpu`` command, run in-process through accelerate's real launcher up to
    the point where it hands torchrun its parsed arguments (``torch.distributed.run.run``, replaced by a
    recorder, so no process starts): torchrun's elastic agent must handle none of ``STOP_SIGNALS`` (handling
    SIGTERM itself ends the launcher with exit 1, see launch.py's docstring) and every other signal of its
    own default, read from torchrun's parser with ``PET_SIGNALS_TO_HANDLE`` unset; SIGTERM and SIGUSR1 are
    then caught by the launcher's own handler."""
    import threading

    import accelerate.commands.launch as accelerate_launch
    import torch.distributed.run as distrib_run

    from progan.training import launch

    monkeypatch.delenv("PET_SIGNALS_TO_HANDLE", raising=False)
    default = distrib_run.get_args_parser().get_default("signals_to_handle")
    torchrun_default = {s.strip() for s in default.split(",")}
    stop = {signal.Signals(s).name for s in launch.STOP_SIGNALS}
    assert stop == {"SIGTERM", "SIGUSR1"} and "SIGTERM" in torchrun_default   # what the test is about
    # main() changes this process's environment, argv, accelerate's module and signal handlers: noted here
    # (monkeypatch restores the values it first saw) and put back afterwards
    for name in ("PET_SIGNALS_TO_HANDLE", launch.READY_DIR_ENV):
        monkeypatch.setenv(name, "overwritten by main()")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(accelerate_launch, "signal", signal)
    monkeypatch.setattr(launch, "_REQUESTED", [])
    monkeypatch.setattr(launch, "_WAKE", threading.Event())
    monkeypatch.setattr(launch, "_deliver", lambda *a, **k: None)           # no delivery thread left behind
    handlers = {s: signal.getsignal(s) for s in launch.STOP_SIGNALS}
    seen = []

    def torchrun(args):
        seen.append(({s.strip() for s in args.signals_to_handle.split(",")},
                     {s: signal.getsignal(s) for s in launch.STOP_SIGNALS}))

    monkeypatch.setattr(distrib_run, "run", torchrun)
    try:
        code = launch.main(["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                            "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
                            str(tmp_path / "never_run.py")])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert code == 0 and len(seen) == 1
    handled, during = seen[0]
    assert handled == torchrun_default - stop
    assert all(handler is launch._record for handler in during.values())


@pytest.mark.slow
@pytest.mark.parametrize("processes, moment, signum", [
    (1, "launcher", signal.SIGUSR1), (1, "worker", signal.SIGTERM), (1, "training", signal.SIGUSR1),
    (2, "launcher", signal.SIGTERM), (2, "worker", signal.SIGUSR1), (2, "training", signal.SIGTERM),
], ids=lambda v: getattr(v, "name", str(v)))
def test_a_stop_signal_at_any_moment_exits_zero_and_loses_nothing(tmp_path, processes, moment, signum):
    data, out = make_image_folder(tmp_path / "data"), tmp_path / "run"
    log = tmp_path / "launch.log"
    proc = _launch(processes, train_args("progan", data, out, **OPTIONS), log)
    launcher = psutil.Process(proc.pid)
    if moment == "launcher":
        _wait_for(lambda: _catches(proc.pid, signum), proc, log)
        assert not _workers(launcher)
    elif moment == "worker":
        _wait_for(lambda: len(_workers(launcher)) > 0, proc, log)
    else:
        _wait_for(lambda: (out / "log.jsonl").exists(), proc, log)
    proc.send_signal(signum)
    output = _finish(proc, log)
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    checkpoint = latest_checkpoint(out / "checkpoints") if (out / "checkpoints").exists() else None
    if moment != "training":  # before the first step: nothing to save, nothing written
        assert checkpoint is None
        assert output.count("stop requested before the first step") == 1, output[-3000:]
        return
    assert checkpoint is not None and "stop requested: saved checkpoint" in output
    stopped_at = load_state(checkpoint)["images_seen"]
    assert 0 < stopped_at < 5000
    assert all((checkpoint / f"rng-rank{rank}.pt").exists() for rank in range(processes))
    # the same command again, to a little past the stop, continues from the checkpoint
    resumed_log = tmp_path / "resumed.log"
    more = {**OPTIONS, "kimg": stopped_at / 1000 + 0.008 * processes}
    resumed = _launch(processes, train_args("progan", data, out, **more), resumed_log)
    output = _finish(resumed, resumed_log)
    assert resumed.returncode == 0 and f"resumed from {checkpoint}" in output, output[-3000:]
    assert load_state(latest_checkpoint(out / "checkpoints"))["images_seen"] == stopped_at + 8 * processes
