"""scripts/plot_campaign.py: the comparison table at equal images seen, marks, signal panels, the CPU-hours axis."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from plot_campaign import comparison_table, parse_mark  # noqa: E402


def test_the_table_aligns_runs_by_kimg_and_marks_missing_evaluations():
    evals = {"a": [{"kimg": 40.0, "fid": 150.04, "recall": 0.1, "resolution": 32},
                   {"kimg": 80.0, "fid": 120.0, "recall": 0.2, "resolution": 64}],
             "b": [{"kimg": 80.0, "fid": 99.96, "recall": 0.25, "resolution": 64}]}
    lines = comparison_table(evals).splitlines()
    assert lines[0] == "| kimg | a | b |"
    assert lines[2] == "| 40 | 150.0 (0.100) @32px | – |"      # b was not evaluated at 40 kimg
    assert lines[3] == "| 80 | 120.0 (0.200) @64px | 100.0 (0.250) @64px |"
    assert len(lines) == 4


def test_a_mark_names_a_plotted_run_a_kimg_and_a_label():
    runs = ["progan-demo64", "sg"]
    assert parse_mark("progan-demo64:700.8:bf16 from here: both", runs) == ("progan-demo64", 700.8, "bf16 from here: both")
    for bad, says in [("progan-demo64:700.8", "RUN:KIMG:TEXT"), ("progan-demo64:700.8:", "RUN:KIMG:TEXT"),
                      ("other:700.8:x", "'other' is not one of the runs"), ("sg:late:x", "'late' is not a number")]:
        with pytest.raises(ValueError, match=says):
            parse_mark(bad, runs)


def test_signals_are_read_from_the_monitor_records_and_plotted_in_their_own_panels(tmp_path):
    import json

    from plot_campaign import main, signal_series

    rows = [{"kimg": 10.0, "step": 5, "g_loss": 1.0}, {"kimg": 10.0, "diversity": 0.9, "r_v": 0.1},
            {"kimg": 20.0, "fid": 150.0, "recall": 0.1, "resolution": 8}, {"kimg": 20.0, "diversity": 0.4},
            {"kimg": 40.0, "fid": 140.0, "recall": 0.2, "resolution": 8}]
    assert signal_series(rows, "diversity") == ([10.0, 20.0], [0.9, 0.4])
    assert signal_series(rows, "r_v") == ([10.0], [0.1])               # a record without r_v adds no point
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pytest.importorskip("matplotlib")
    from PIL import Image

    assert main([str(run), "--out", str(tmp_path / "with.png")]) == 0
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows if "diversity" not in r) + "\n")
    assert main([str(run), "--out", str(tmp_path / "without.png")]) == 0
    # three panels (FID, diversity, r_v) make a taller figure than FID alone
    assert Image.open(tmp_path / "with.png").height > 1.5 * Image.open(tmp_path / "without.png").height


def test_cpu_hours_put_each_point_at_its_cpu_seconds_and_refuse_logs_without_them(tmp_path, capsys):
    import json

    from plot_campaign import cpu_hours_table, main, signal_series, x_value

    rows = [{"kimg": 20.0, "fid": 150.0, "recall": 0.1, "resolution": 8, "cpu_s": 1800.0},
            {"kimg": 20.0, "diversity": 0.9, "cpu_s": 1810.0},
            {"kimg": 40.0, "fid": 140.0, "recall": 0.2, "resolution": 8, "cpu_s": 5400.0}]
    assert [x_value(r, "cpu-hours") for r in rows] == [0.5, 1810 / 3600, 1.5]
    assert [x_value(r, "kimg") for r in rows] == [20.0, 20.0, 40.0]
    assert signal_series(rows, "diversity", "cpu-hours") == ([1810 / 3600], [0.9])
    table = cpu_hours_table({"sg": [rows[0], rows[2]]}).splitlines()
    assert table[2:] == ["| sg | 20 | 0.50 | 150.0 (0.100) @8px |", "| sg | 40 | 1.50 | 140.0 (0.200) @8px |"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pytest.importorskip("matplotlib")
    assert main([str(run), "--out", str(tmp_path / "cpu.png"), "--x", "cpu-hours"]) == 0
    assert "| run | 40 | 1.50 | 140.0 (0.200) @8px |" in capsys.readouterr().out
    assert main([str(run), "--out", str(tmp_path / "m.png"), "--x", "cpu-hours", "--mark", "run:20:x"]) == 2
    assert "use it with --x kimg" in capsys.readouterr().err
    (run / "log.jsonl").write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "cpu_s"}) for r in rows))
    assert main([str(run), "--out", str(tmp_path / "old.png"), "--x", "cpu-hours"]) == 2
    assert "without cpu_s" in capsys.readouterr().err and not (tmp_path / "old.png").exists()
