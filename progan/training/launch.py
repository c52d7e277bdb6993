"""``accelerate launch`` for schedulers: SIGTERM/SIGUSR1 save a checkpoint and every process exits 0.

``python -m progan.training.launch [accelerate launch arguments] train.py [train.py arguments]``

Why not ``accelerate launch`` itself: with ``--multi_gpu`` it runs torchrun's elastic agent
(torch.distributed.elastic), which handles only the signals in ``PET_SIGNALS_TO_HANDLE`` (default
SIGTERM, SIGINT, SIGHUP, SIGQUIT). Measured on CPU with 2 processes (issue 11), and visible in
``launcher/api.py``:

- SIGUSR1 to the launcher kills it (exit 138); the workers keep training, orphaned, and never save.
- SIGTERM is forwarded to the workers, which save, but the agent then raises ``SignalException``
  (``torch.distributed.launcher.api.launch_agent``): the launcher exits 1 and the scheduler records a
  failure. With ``PET_SIGNALS_TO_HANDLE`` extended by SIGUSR1 the same happens for USR1. The agent
  also SIGKILLs workers still saving after ``PET_SHUTDOWN_TIMEOUT`` seconds (default 30).

Without ``--multi_gpu`` (one process) accelerate runs the script as a plain subprocess, which no
signal to the launcher reaches at all.

This wrapper takes SIGTERM and SIGUSR1 away from the agent and forwards them to the workers
(``train.py`` stops all ranks at the same step, saves, exits 0), so the launcher exits 0 too.
SIGINT/SIGHUP/SIGQUIT keep torchrun's behaviour. No moment is unprotected (issue 20):

- The handlers are this module's first statements, before anything slow is imported (``progan``'s
  package import is lazy for this reason): a signal while the launcher starts is recorded, not fatal.
- A worker gets a signal only once it catches it. Python needs a moment before train.py's first line,
  and a signal then would kill the worker with the default action. So workers announce themselves:
  train.py, right after installing its handlers, creates a file named by its pid in the directory named
  by ``$GAN_STUDIO_STOP_READY_DIR`` (set here). The workers are this launcher's descendants (any
  launcher in between) that announced; each gets every stop signal once, also one that arrived
  before it announced. A script that never announces never gets one.
"""
from __future__ import annotations

import signal
import threading

_REQUESTED: list[int] = []  # stop signals received, in order
_WAKE = threading.Event()


def _record(signum: int, _frame: object = None) -> None:
    _REQUESTED.append(signum)
    _WAKE.set()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
if __name__ == "__main__":  # first of all; importing this module elsewhere must not take signals over
    for _sig in STOP_SIGNALS:
        signal.signal(_sig, _record)

import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

__all__ = ["STOP_SIGNALS", "READY_DIR_ENV", "announced_workers", "main"]

READY_DIR_ENV = "GAN_STUDIO_STOP_READY_DIR"  # train.py writes <dir>/<pid> once it catches stop signals


def announced_workers(ready_dir: Path, root: psutil.Process | None = None) -> list[psutil.Process]:
    """The descendants of ``root`` (default: this process) that announced themselves in ``ready_dir``."""
    try:
        announced = {int(p.name) for p in ready_dir.iterdir() if p.name.isdigit()}
    except OSError:
        return []
    try:
        descendants = (root or psutil.Process()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in descendants if p.pid in announced]


def _deliver(ready_dir: Path, *, poll: float = 0.1) -> None:
    """Forever: give each announced worker every stop signal it has not had yet (the latest one)."""
    delivered: dict[int, int] = {}  # pid -> how many of _REQUESTED it has been sent
    while True:
        _WAKE.wait(poll)
        _WAKE.clear()
        requested = len(_REQUESTED)
        if not requested:
            continue
        for worker in announced_workers(ready_dir):
            if delivered.get(worker.pid, 0) < requested:
                try:
                    worker.send_signal(_REQUESTED[requested - 1])
                except psutil.NoSuchProcess:
                    pass
                delivered[worker.pid] = requested


class _KeepStopHandlers:
    """The ``signal`` module as accelerate's launcher sees it, except that it cannot take the stop signals.

    accelerate 1.16's single-process launcher (``_run_subprocess``) replaces SIGTERM's handler with
    ``sys.exit(143)`` and kills the worker tree: the worker would die before saving. Ours stays, and
    forwards the signal to the announced worker, which saves and exits 0 (the launcher then does too)."""

    def __getattr__(self, name: str):
        return getattr(signal, name)

    @staticmethod
    def signal(signum, handler):
        if signum in STOP_SIGNALS:
            return signal.getsignal(signum)
        return signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for sig in STOP_SIGNALS:  # already done when run as a module; here for callers of main()
        signal.signal(sig, _record)
    # torchrun keeps the signals it would turn into an exit 1; the environment variable is read by its
    # argument parser, which accelerate builds after this point
    os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"
    ready_dir = Path(tempfile.mkdtemp(prefix="gan-studio-stop-"))
    os.environ[READY_DIR_ENV] = str(ready_dir)  # inherited by the workers through accelerate and torchrun
    threading.Thread(target=_deliver, args=(ready_dir,), name="deliver-stop-signals", daemon=True).start()
    try:
        from accelerate.commands import launch as accelerate_launch
        from accelerate.commands.accelerate_cli import main as accelerate_main

        if getattr(accelerate_launch, "signal", None) is signal:
            accelerate_launch.signal = _KeepStopHandlers()

        sys.argv = ["accelerate", "launch", *argv]
        try:
            accelerate_main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0
    finally:
        shutil.rmtree(ready_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
