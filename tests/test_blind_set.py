"""scripts/blind_set.py: a blind set's three stages on a two-file stand-in project.

The stand-in has one product function (``mod.double``), a test file that checks it and one that does not. A
bug that names only the unrelated file survives the ``named`` stage; the ``cover`` stage runs exactly the tests
whose coverage context ran the bug's line (here written by hand with coverage's own API), and the ``suite``
stage the whole suite, so both catch it; a bug whose text does not occur counts neither way; a bug already
caught is not run again by a later stage.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "blind_set", Path(__file__).resolve().parents[1] / "scripts" / "blind_set.py")
blind_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(blind_set)

MOD = "def double(x):\n    return 2 * x\n\n\ndef unused():\n    return 1\n"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "mod.py").write_text(MOD)
    (root / "tests" / "test_mod.py").write_text("from mod import double\n\n\ndef test_double():\n    assert double(3) == 6\n")
    (root / "tests" / "test_other.py").write_text("def test_other():\n    assert True\n")
    bugs = [
        {"id": "B1", "file": "mod.py", "old": "return 2 * x", "new": "return 3 * x", "tests": ["tests/test_other.py"]},
        {"id": "B2", "file": "mod.py", "old": "return 2 * x", "new": "return x + x + 1", "tests": ["tests/test_mod.py"]},
        {"id": "B3", "file": "mod.py", "old": "return 4 * x", "new": "return 5 * x", "tests": ["tests/test_mod.py"]},
        {"id": "B4", "file": "mod.py", "old": "    return 1\n", "new": "    return 2\n", "tests": ["tests/test_other.py"]},
    ]
    (tmp_path / "set.json").write_text(json.dumps(bugs))
    return root


def _coverage(tmp_path, root) -> str:
    import coverage

    path = str(tmp_path / "cov.data")
    data = coverage.CoverageData(basename=path)
    data.set_context("tests.test_mod.test_double")
    data.add_lines({str(root / "mod.py"): [1, 2]})            # test_double ran double's lines, not unused's
    data.write()
    return path


def test_the_three_stages_on_a_stand_in_project(project, tmp_path, capsys):
    out = tmp_path / "results.json"
    common = [str(tmp_path / "set.json"), str(out), "--root", str(project)]
    assert blind_set.main(["named", *common]) == 0
    results = json.loads(out.read_text())
    assert {k: v["named"]["status"] for k, v in results.items()} == {
        "B1": "survived", "B2": "killed", "B3": "stale", "B4": "survived"}
    assert "caught by stage named: 1 of 3 (33%), 1 stale" in capsys.readouterr().out

    coverage_file = _coverage(tmp_path, project)
    assert blind_set.main(["cover", *common, "--coverage", coverage_file, "--coverage-root", str(project)]) == 0
    results = json.loads(out.read_text())
    assert results["B1"]["cover"]["status"] == "killed" and results["B1"]["cover"]["tests"] == 1
    assert results["B4"]["cover"]["status"] == "uncovered"   # no test ran unused(): nothing to run
    assert "cover" not in results["B2"] and "cover" not in results["B3"]   # caught or stale: not run again
    assert "caught by stage cover: 2 of 3 (67%), 1 stale" in capsys.readouterr().out

    assert blind_set.main(["suite", *common]) == 0
    results = json.loads(out.read_text())
    assert results["B4"]["suite"]["status"] == "survived" and "suite" not in results["B1"]
    assert "caught by stage suite: 2 of 3 (67%), 1 stale" in capsys.readouterr().out
    assert (project / "mod.py").read_text() == MOD             # the checkout itself is never edited


def test_the_bug_lines_span_a_multi_line_edit_and_a_malformed_set_is_one_line(tmp_path, capsys):
    assert list(blind_set.bug_lines(MOD, "return 2 * x\n\n\ndef unused")) == [2, 3, 4, 5]
    assert list(blind_set.bug_lines(MOD, "def double")) == [1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "X", "file": "mod.py", "old": "a"}]))
    assert blind_set.main(["named", str(bad), str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "bug X lacks new, tests" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as info:
        blind_set.main(["cover", str(bad), str(tmp_path / "r.json")])
    assert info.value.code == 2 and "stage cover needs --coverage" in capsys.readouterr().err
