"""The hand-written mutants of scripts/mutations.py still describe the current code (issue 20).

A mutant whose search text no longer occurs exactly once is never applied, so it cannot be killed
and says nothing about the tests; one whose test selection names a test that was renamed makes
pytest stop with "no tests ran". Both go stale silently whenever the code moves on; this keeps them
honest without running a single mutant (docs/testing.md, "Mutation testing").
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import mutate  # noqa: E402
from mutations import ESCAPES, EQUIVALENT, MUTANTS  # noqa: E402

ALL = MUTANTS + ESCAPES


def test_mutant_ids_are_unique():
    ids = [mt.id for mt in ALL]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert set(EQUIVALENT) <= set(ids)


@pytest.mark.parametrize("mutant", ALL, ids=[mt.id for mt in ALL])
def test_every_search_text_occurs_exactly_once(mutant):
    assert mutate.stale_edits(mutant) == []
    for old, new in mutant.edits:
        assert old != new, f"{mutant.id}: an edit that changes nothing"


@pytest.mark.parametrize("mutant", ALL, ids=[mt.id for mt in ALL])
def test_every_named_test_exists(mutant):
    for selection in mutant.tests:
        path, _, name = selection.partition("::")
        assert (ROOT / path).is_file(), f"{mutant.id}: no {path}"
        if name:
            function = name.split("[")[0].split("::")[-1]
            source = (ROOT / path).read_text()
            assert re.search(rf"^\s*def {re.escape(function)}\(", source, re.M), f"{mutant.id}: no {selection}"


def test_a_stale_mutant_is_reported_not_raised(tmp_path):
    """The runner reports a mutant whose text is missing (status "stale") and carries on."""
    (tmp_path / "m.py").write_text("x = 1\n")
    stale = mutate.Mutant("gone", "m.py", (("y = 2", "y = 3"),), ("tests/none.py",))
    live = mutate.Mutant("live", "m.py", (("x = 1", "x = 2"),), ("tests/none.py",))
    results = dict((mt.id, result[0]) for mt, result in mutate._serial(
        tmp_path, [stale, live], lambda tree, tests, timeout: ("killed", 0.0, ""), 1.0))
    assert results == {"gone": "stale", "live": "killed"}
    assert (tmp_path / "m.py").read_text() == "x = 1\n"  # restored after the live one


@pytest.mark.parametrize("output,status", [
    ("FAILED tests/t.py::a - NameError: name 'q' is not defined\nE       NameError: name 'q' is not defined\n", "invalid"),
    ("FAILED tests/t.py::a - ImportError: cannot import name 'q'\nE   ImportError: cannot import name 'q'\n", "invalid"),
    ("FAILED tests/t.py::a - assert 1 == 2\nE       assert 1 == 2\n", "killed"),
    ("FAILED tests/t.py::a - ValueError: psi\nE       ValueError: psi\n", "killed"),
])
def test_a_mutant_failing_only_with_a_wiring_error_is_invalid(output, status):
    assert mutate._verdict(1, output, 0.0)[0] == status
