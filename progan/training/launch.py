"""``accelerate launch`` for schedulers: SIGTERM/SIGUSR1 save a checkpoint and every process exits 0.

``python -m progan.training.launch [accelerate launch arguments] train.py [train.py arguments]``

Why not ``accelerate launch`` itself: it runs torchrun's elastic agent (torch.distributed.elastic),
which handles only the signals in ``PET_SIGNALS_TO_HANDLE`` (default SIGTERM, SIGINT, SIGHUP,
SIGQUIT). Measured on CPU with 2 processes (issue 11), and visible in ``launcher/api.py``:

- SIGUSR1 to the launcher kills it (exit 138); the workers keep training, orphaned, and never save.
- SIGTERM is forwarded to the workers, which save, but the agent then raises ``SignalException``
  (``torch.distributed.launcher.api.launch_agent``): the launcher exits 1 and the scheduler records a
  failure. With ``PET_SIGNALS_TO_HANDLE`` extended by SIGUSR1 the same happens for USR1. The agent
  also SIGKILLs workers still saving after ``PET_SHUTDOWN_TIMEOUT`` seconds (default 30).

This wrapper takes SIGTERM and SIGUSR1 away from the agent, forwards them to the worker processes
(``train.py`` stops all ranks at the same step, saves, exits 0) and lets the agent see its workers
succeed, so the launcher exits 0 too. SIGINT/SIGHUP/SIGQUIT keep torchrun's behaviour. Workers run in
their own sessions (torchrun starts them with ``start_new_session``), so a signal to the launcher
reaches them only through it.
"""
from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import psutil

__all__ = ["STOP_SIGNALS", "forward_to_workers", "main"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_PENDING: list[int] = []


def forward_to_workers(signum: int, _frame: FrameType | None = None) -> None:
    """Send ``signum`` to the launcher's worker processes (its children that torchrun gave a LOCAL_RANK)."""
    workers = []
    for child in psutil.Process().children():
        try:
            if "LOCAL_RANK" in child.environ():
                workers.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    if not workers:  # still in rendezvous: workers get it as soon as they exist (see _deliver_pending)
        _PENDING.append(signum)
    for worker in workers:
        try:
            worker.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def _deliver_pending() -> None:
    """A stop that arrived before the workers existed is delivered once they do (train.py records
    signals from its first line)."""
    import threading
    import time

    def run() -> None:
        while True:
            time.sleep(0.5)
            if _PENDING:
                signum = _PENDING[-1]
                _PENDING.clear()
                forward_to_workers(signum)

    threading.Thread(target=run, name="deliver-stop-signal", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # torchrun keeps the signals it would turn into an exit 1; the environment variable is read by its
    # argument parser, which accelerate builds after this point
    os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"
    for sig in STOP_SIGNALS:
        signal.signal(sig, forward_to_workers)
    _deliver_pending()
    from accelerate.commands.accelerate_cli import main as accelerate_main

    sys.argv = ["accelerate", "launch", *argv]
    try:
        accelerate_main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
