"""scripts/plot_campaign.py's comparison table: runs side by side at equal images seen."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from plot_campaign import comparison_table  # noqa: E402


def test_the_table_aligns_runs_by_kimg_and_marks_missing_evaluations():
    evals = {"a": [{"kimg": 40.0, "fid": 150.04, "recall": 0.1, "resolution": 32},
                   {"kimg": 80.0, "fid": 120.0, "recall": 0.2, "resolution": 64}],
             "b": [{"kimg": 80.0, "fid": 99.96, "recall": 0.25, "resolution": 64}]}
    lines = comparison_table(evals).splitlines()
    assert lines[0] == "| kimg | a | b |"
    assert lines[2] == "| 40 | 150.0 (0.100) @32px | – |"      # b was not evaluated at 40 kimg
    assert lines[3] == "| 80 | 120.0 (0.200) @64px | 100.0 (0.250) @64px |"
    assert len(lines) == 4
