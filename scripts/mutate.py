"""Mutation testing, by hand-written mutants: apply one deliberate bug at a time, run the tests named
for it, and report which mutants the tests kill.

    python scripts/mutate.py                       # every mutant scripts/mutations.py gathers
    python scripts/mutate.py --set escapes         # the bugs issue 14 found slipping through
    python scripts/mutate.py --only loss-gp-abs --only ema-blend-reversed
    python scripts/mutate.py --list

The work happens in a temporary copy of the working tree (tracked and untracked files, no .git), so
the checkout is never modified, even if the run is interrupted. Verdicts:

- *killed*: a test failed (pytest exit 1) on behaviour;
- *survived*: the tests passed;
- *invalid*: the tests failed only with a wiring error (``NameError``, ``ImportError``, ``SyntaxError``):
  the mutant broke the code's wiring, the tests did not see the behaviour it plants;
- *stale*: an edit's search text no longer occurs exactly once; reported, nothing applied
  (``tests/test_mutations.py`` keeps the list current);
- *timeout* / *error (exit N)*: anything else (collection error, interrupted).

Stale and invalid mutants count neither as killed nor in the total. Tests run as ``pytest -q -x`` at
``nice 19`` with ``OMP_NUM_THREADS=1``, one mutant at a time. To spare a torch import per mutant, the
runner imports the heavy libraries once and forks a child per mutant, which imports the (mutated)
project fresh, writes no bytecode (``PYTHONDONTWRITEBYTECODE``: a mutant and the restored original can
share size and mtime, so a cached .pyc could run in place of the source) and runs ``pytest.main``
(``--no-fork`` starts a new interpreter each time instead). The full set takes several minutes on 2
idle cores, far longer beside a training run, so this is not part of CI (docs/testing.md).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import ESCAPES, EQUIVALENT, MUTANTS, Mutant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETS = {"all": MUTANTS, "escapes": ESCAPES}
SLOW_TESTS = ("test_distributed", "test_app_browser", "test_rank_data")  # processes or a browser: minutes each


def _copy_tree(dest: Path) -> None:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "runs",
                                                            "campaign", "*.egg-info"), symlinks=True)


class StaleMutant(ValueError):
    """A mutant whose search text no longer occurs exactly once in its file (the code moved on)."""


def stale_edits(mutant: Mutant, root: Path = ROOT) -> list[str]:
    """Why ``mutant`` cannot be applied to the code under ``root`` (empty when it can)."""
    path = root / mutant.file
    if not path.is_file():
        return [f"{mutant.file} does not exist"]
    text, problems = path.read_text(), []
    for old, new in mutant.edits:
        count = text.count(old)
        if count != 1:
            problems.append(f"{old[:60]!r} occurs {count} times in {mutant.file}")
        else:
            text = text.replace(old, new)  # later edits see earlier ones, as apply() does
    return problems


def apply(tree: Path, mutant: Mutant) -> str:
    """Write the mutant into ``tree``; returns the original text. Raises ``StaleMutant`` (and writes
    nothing) if an edit does not match exactly once."""
    problems = stale_edits(mutant, tree)
    if problems:
        raise StaleMutant("; ".join(problems))
    path = tree / mutant.file
    original = text = path.read_text()
    for old, new in mutant.edits:
        text = text.replace(old, new)
    path.write_text(text)
    return original


def _preload() -> None:
    """Import what every test needs but no project module, so forked children start warm."""
    import numpy, PIL.Image, pytest, scipy.linalg, torch  # noqa: F401,E401
    try:
        import accelerate, gradio, safetensors  # noqa: F401,E401
    except ImportError:
        pass


def start_forked(tree: Path, tests: tuple[str, ...]) -> int:
    """Fork a child that runs ``tests`` in ``tree``; its output goes to ``tree/../pytest.log``."""
    log = tree.parent / "pytest.log"
    pid = os.fork()
    if pid == 0:  # child: a fresh view of the (mutated) project, then pytest
        code = 3
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(tree)
            sys.path.insert(0, str(tree))
            os.environ["PYTHONPATH"] = str(tree)
            # no .pyc in the tree: a mutant and its restored original can share size and mtime second,
            # and a cached mutant would then run in place of the restored code (and vice versa)
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            sys.dont_write_bytecode = True
            import pytest

            code = int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *tests]))
        finally:
            sys.stdout.flush()
            os._exit(code)
    return pid


def finish_forked(tree: Path, pid: int, status: int, start: float) -> tuple[str, float, str]:
    log = tree.parent / "pytest.log"
    out = log.read_text(errors="replace") if log.exists() else ""
    return _verdict(os.waitstatus_to_exitcode(status), out, time.monotonic() - start)


def run_tests_forked(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    start = time.monotonic()
    pid = start_forked(tree, tests)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start, ""
        time.sleep(0.2)
    return finish_forked(tree, pid, status, start)


def run_parallel(trees: list[Path], mutants: list[Mutant], timeout: float):
    """Yield ``(mutant, (status, seconds, detail))`` running one mutant per tree at a time, forked."""
    queue, running = list(mutants), {}  # pid -> (tree, mutant, original, start)
    free = list(trees)
    while queue or running:
        while queue and free:
            tree, mt = free.pop(), queue.pop(0)
            try:
                original = apply(tree, mt)
            except StaleMutant as exc:
                free.append(tree)
                yield mt, ("stale", 0.0, str(exc)[:300])
                continue
            running[start_forked(tree, mt.tests)] = (tree, mt, original, time.monotonic())
        time.sleep(0.2)
        for pid, (tree, mt, original, start) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            timed_out = not done and time.monotonic() - start > timeout
            if timed_out:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if done or timed_out:
                result = ("timeout", time.monotonic() - start, "") if timed_out else finish_forked(tree, pid, status, start)
                (tree / mt.file).write_text(original)
                del running[pid]
                free.append(tree)
                yield mt, result


# A test that fails with one of these did not see the planted behaviour: the mutant broke the code's
# wiring (an undefined name, a failed import, a syntax error), which any import would show.
WIRING_ERRORS = ("NameError", "UnboundLocalError", "ImportError", "ModuleNotFoundError", "SyntaxError",
                 "IndentationError")


def _verdict(code: int, out: str, seconds: float) -> tuple[str, float, str]:
    """``killed`` (a test failed on behaviour), ``invalid`` (failed only with a wiring error),
    ``survived`` (all passed) or ``error (exit N)`` (collection error, interrupted, ...)."""
    status = {0: "survived", 1: "killed"}.get(code, f"error (exit {code})")
    lines = out.splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    detail = failed[0] if failed else out.strip().splitlines()[-1] if out.strip() else ""
    raised = [line.split()[1].rstrip(":") for line in lines if line.startswith("E   ") and len(line.split()) > 1
              and line.split()[1].rstrip(":").endswith(("Error", "Exception"))]
    if status == "killed" and raised and all(name.split(".")[-1] in WIRING_ERRORS for name in raised):
        status = "invalid"
    return status, seconds, detail[:300]


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    return _verdict(done.returncode, done.stdout, time.monotonic() - start)


def _serial(tree: Path, mutants: list[Mutant], run, timeout: float):
    for mt in mutants:
        try:
            original = apply(tree, mt)
        except StaleMutant as exc:
            yield mt, ("stale", 0.0, str(exc)[:300])
            continue
        try:
            result = run(tree, mt.tests, timeout)
        finally:
            (tree / mt.file).write_text(original)
        yield mt, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=tuple(SETS), default="all")
    parser.add_argument("--only", action="append", default=None, metavar="ID", help="run only these mutant ids")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-fork", dest="fork", action="store_false", help="a new interpreter per mutant")
    parser.add_argument("--jobs", type=int, default=1, help="mutants at once, each in its own copy (forked runner)")
    parser.add_argument("--slow", action="store_true", help="include mutants whose tests launch processes (minutes each)")
    parser.add_argument("--tests", action="append", default=None, metavar="SELECTION",
                        help="run these pytest selections for every chosen mutant instead of its own (a quick subset)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the check that the unmutated tests pass")
    args = parser.parse_args(argv)
    chosen = [mt for mt in SETS[args.set] if not args.only or mt.id in args.only]
    if not args.slow and not args.only:
        chosen = [mt for mt in chosen if not any(slow in t for t in mt.tests for slow in SLOW_TESTS)]
    if args.tests:
        chosen = [mt._replace(tests=tuple(args.tests)) for mt in chosen]
    if args.list:
        for mt in chosen:
            print(f"{mt.id:40s} {mt.file:32s} {' '.join(mt.tests)}")
        return 0
    os.nice(19 - os.nice(0))
    os.environ["OMP_NUM_THREADS"] = "1"
    run = run_tests
    if args.fork and hasattr(os, "fork"):
        _preload()
        run = run_tests_forked
    results = []
    with tempfile.TemporaryDirectory(prefix="gan-studio-mutate-") as tmp:
        tree = Path(tmp) / "tree"
        _copy_tree(tree)
        tests = tuple(sorted({t for mt in chosen for t in mt.tests}))
        baseline, _, detail = run(tree, tests, args.timeout) if args.baseline else ("survived", 0.0, "")
        if baseline != "survived":
            print(f"the unmutated tests do not pass ({baseline}): {detail}", file=sys.stderr)
            return 2
        if run is run_tests_forked and args.jobs > 1:
            trees = [tree]
            for k in range(1, args.jobs):
                trees.append(Path(tmp) / f"tree{k}" / "tree")
                shutil.copytree(tree, trees[-1], symlinks=True)
            outcomes = run_parallel(trees, chosen, args.timeout)
        else:
            outcomes = _serial(tree, chosen, run, args.timeout)
        for mt, (status, seconds, detail) in outcomes:
            note = EQUIVALENT.get(mt.id, "")
            results.append({"id": mt.id, "file": mt.file, "status": status, "seconds": round(seconds, 1),
                            "detail": detail, "equivalent": note})
            print(f"{status:9s} {seconds:6.1f}s  {mt.id:40s} {detail}", flush=True)
    killed = sum(r["status"] == "killed" for r in results)
    counted = [r for r in results if r["status"] not in ("stale", "invalid")]
    survivors = [r for r in results if r["status"] != "killed"]
    # stale mutants did not run and invalid ones did not test behaviour: neither counts either way
    print(f"\nkilled {killed} of {len(counted)} ({100 * killed / max(1, len(counted)):.0f}%); not counted: "
          f"{sum(r['status'] == 'stale' for r in results)} stale (text not found), "
          f"{sum(r['status'] == 'invalid' for r in results)} invalid (failed only with {'/'.join(WIRING_ERRORS[:3])}...)")
    for r in survivors:
        print(f"  {r['status']}: {r['id']} ({r['file']}){' -- equivalent: ' + r['equivalent'] if r['equivalent'] else ''}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
