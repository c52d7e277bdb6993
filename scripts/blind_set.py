"""Measure a blind set: realistic bugs planted by someone who has not read the tests (issue 20's goal).

A set is a JSON list of ``{"id", "file", "old", "new", "tests": [test files the planter expects to catch it],
"what"}``, one edit each (``old`` occurs exactly once in ``file``). Three stages, each run on the bugs the
previous one left alive, so the cheap stage takes most of the work:

    python scripts/blind_set.py named SET.json RESULTS.json              # the planter's named files, fast tests
    python scripts/blind_set.py cover SET.json RESULTS.json --coverage C  # + every fast test that ran a line of it
    python scripts/blind_set.py suite SET.json RESULTS.json               # + the whole fast suite

``named`` is the protocol of every set since the first (comparable across sessions, but it depends on the
planter's guess of where a test lives); ``cover`` runs every fast test whose coverage context (a ``coverage run
--rcfile=RC -m pytest -m "not slow"`` with ``dynamic_context = test_function``, as for ``boundary_sweep.py``)
executed one of the bug's lines (``--coverage-root``: the checkout that coverage measured); ``suite`` runs the
whole fast suite (``pytest -x -m "not slow" tests``), which also sees tests that reach the code through a
subprocess or only at import. RESULTS.json keeps one verdict per bug and stage and is resumed if it exists.
The bugs run in a temporary copy of the checkout (never in it), one at a time, without bytecode; a bug whose
text no longer occurs exactly once is reported ``stale`` and counts neither way. docs/testing.md has the sets.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from boundary_sweep import nodeid  # noqa: E402  (the same contexts as the sweeps)

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("named", "cover", "suite")
IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "runs", "campaign", "*.egg-info", ".devdeps")


def load_set(path: Path) -> list[dict]:
    bugs = json.loads(Path(path).read_text())
    for bug in bugs:
        missing = {"id", "file", "old", "new", "tests"} - set(bug)
        if missing:
            raise ValueError(f"{path}: bug {bug.get('id', '?')} lacks {', '.join(sorted(missing))}")
    ids = [b["id"] for b in bugs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate bug ids")
    return bugs


def bug_lines(source: str, old: str) -> range:
    """The 1-based lines of ``source`` that ``old`` (occurring exactly once) spans."""
    start = source.index(old)
    first = source.count("\n", 0, start) + 1
    return range(first, first + old.count("\n") + 1)


def covering_tests(coverage_file: str, coverage_root: Path, file: str, lines: range) -> list[str]:
    """Node ids of the tests whose coverage context ran any of ``lines`` of ``file``."""
    import coverage

    data = coverage.CoverageData(basename=coverage_file)
    data.read()
    measured = {os.path.relpath(p, coverage_root): p for p in data.measured_files()}
    if file not in measured:
        return []
    contexts = data.contexts_by_lineno(measured[file])
    return sorted({nodeid(c) for line in lines for c in contexts.get(line, ()) if c})


def verdict(code: int) -> str:
    return {0: "survived", 1: "killed", 5: "no tests"}.get(code, f"error (exit {code})")


def run_pytest(tree: Path, selection: list[str], timeout: float) -> tuple[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONPATH": str(tree),
           "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", *selection]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [""]
    return verdict(done.returncode), (failed or last)[0][:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("bugs", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to copy and run (default: this one)")
    parser.add_argument("--coverage", default=None, help="coverage data with test_function contexts (stage cover)")
    parser.add_argument("--coverage-root", type=Path, default=None, help="the checkout that coverage measured")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per bug")
    args = parser.parse_args(argv)
    if args.stage == "cover" and not args.coverage:
        parser.error("stage cover needs --coverage")
    try:
        bugs = load_set(args.bugs)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results: dict = json.loads(args.results.read_text()) if args.results.exists() else {}
    earlier = STAGES[:STAGES.index(args.stage)]
    with tempfile.TemporaryDirectory(prefix="blind-set-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(args.root, tree, ignore=IGNORE, symlinks=True)
        for bug in bugs:
            mine = results.setdefault(bug["id"], {})
            if args.stage in mine or any(mine.get(s, {}).get("status") in ("killed", "stale") for s in earlier):
                continue
            path = tree / bug["file"]
            source = path.read_text() if path.is_file() else ""
            if source.count(bug["old"]) != 1:
                mine[args.stage] = {"status": "stale", "detail": f"old text occurs {source.count(bug['old'])} times"}
            else:
                if args.stage == "named":
                    selection = list(bug["tests"])
                elif args.stage == "cover":
                    selection = covering_tests(args.coverage, (args.coverage_root or args.root).resolve(), bug["file"],
                                               bug_lines(source, bug["old"]))
                else:
                    selection = ["tests"]
                start = time.monotonic()
                if selection:
                    path.write_text(source.replace(bug["old"], bug["new"]))
                    try:
                        status, detail = run_pytest(tree, selection, args.timeout)
                    finally:
                        path.write_text(source)
                else:
                    status, detail = "uncovered", "no fast test runs these lines"
                mine[args.stage] = {"status": status, "detail": detail, "tests": len(selection),
                                    "seconds": round(time.monotonic() - start, 1)}
            print(f"{mine[args.stage]['status']:9s} {bug['id']:6s} {bug['file']}  {mine[args.stage]['detail']}", flush=True)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
    caught = sum(any(r.get(s, {}).get("status") == "killed" for s in STAGES[:STAGES.index(args.stage) + 1])
                 for r in (results.get(b["id"], {}) for b in bugs))
    stale = sum(any(r.get(s, {}).get("status") == "stale" for s in STAGES) for r in (results.get(b["id"], {}) for b in bugs))
    counted = len(bugs) - stale
    print(f"caught by stage {args.stage}: {caught} of {counted} ({100 * caught / max(1, counted):.0f}%), {stale} stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
