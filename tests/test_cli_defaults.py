"""Each CLI's defaults at their documented values, and the documented value shown by --help.

A default moved to a neighbouring value (32 -> 33 queued requests, 96 -> 97 frames) changes what a user
gets without breaking any test that passes the option explicitly. The expected values are the ones the
docs state: the help text's "(default: N)", docs/app.md's limits ("2-240 frames, 1-60 fps, ... remote
models up to 1024 px ... at most 300 steps") and the SeFa module docstring's ``--k 10``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import evaluate
from app import __main__ as app_main
from app import directions as app_directions
from app import generate as app_generate
from app import ui_edit
from app.limits import DEFAULT_LIMITS, Limits

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _help(parse, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        parse([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare on single spaces


# (cli, parse, the arguments a run needs, option, attribute, documented default, as the help writes it)
CASES = [
    ("app", app_main.parse_args, [], "--max-queue", "max_queue", 32, "32"),
    ("app", app_main.parse_args, [], "--concurrency", "concurrency", 2, "2"),
    ("interpolate", app_generate.parse_args, ["interpolate", "--out", "w.mp4"], "--frames", "frames", 96, "96"),
    ("interpolate", app_generate.parse_args, ["interpolate", "--out", "w.mp4"], "--fps", "fps", 24, "24"),
    ("interpolate", app_generate.parse_args, ["interpolate", "--out", "w.mp4"], "--min-size", "min_size", 256, "256"),
    ("edit", app_generate.parse_args, ["edit", "--out", "e.png"], "--k", "k", 10, "10"),
    ("edit", app_generate.parse_args, ["edit", "--out", "e.png"], "--strength", "strength", 3.0, "3"),
    ("directions", app_directions._parser().parse_args, [], "--k", "k", 10, "10"),
    ("evaluate", evaluate.build_parser().parse_args, ["--weights", "w"], "--num", "num", 10000, "10000"),
]


@pytest.mark.parametrize("cli, parse, argv, option, attr, expected, shown", CASES,
                         ids=[f"{c[0]}{c[3]}" for c in CASES])
def test_cli_default_is_the_documented_value_and_help_says_so(cli, parse, argv, option, attr, expected, shown,
                                                              capsys):
    assert getattr(parse(list(argv)), attr) == expected
    # the help of the command that owns the option (for app.generate: the subcommand's)
    text = _help(parse, argv[:1] if cli in ("interpolate", "edit") else [], capsys)
    assert option in text
    assert f"default: {shown}" in text or f"default {shown}" in text


def test_sefa_k_is_ten_everywhere_so_the_app_and_the_clis_share_one_cache_file(tiny_generator):
    # the module docstring's example is `--k 10`; the cache is keyed by k, so a k that differs between the
    # app (ui_edit.K), `app.generate edit`, `app.directions` and the Python API computes the directions twice
    assert "--k 10" in app_directions.__doc__
    assert ui_edit.K == 10
    assert app_generate.parse_args(["edit", "--out", "e.png"]).k == ui_edit.K
    assert app_directions._parser().parse_args([]).k == ui_edit.K
    assert compute_k(tiny_generator) == ui_edit.K


def compute_k(generator) -> int:
    computed = app_directions.compute_directions(generator, layers="0")
    cached = app_directions.cached_directions(generator, layers="0")  # cache under the test's GAN_STUDIO_CACHE
    assert cached.k == computed.k and cached.vectors.shape == computed.vectors.shape
    return computed.k


def test_the_apps_limits_are_the_ones_docs_app_md_states():
    docs = " ".join((DOCS / "app.md").read_text().split())
    limits = Limits()
    assert limits == DEFAULT_LIMITS
    # "interpolation seeds, 2-240 frames (fewer above 256 px), 1-60 fps, ... remote models up to 1024 px;
    #  ... at most 300 steps"; the Limits comment: a video of 240 frames is 10 s at 24 fps
    for phrase in ("2-240 frames", "1-60 fps", "remote models up to 1024 px", "at most 300 steps"):
        assert phrase in docs
    assert limits.max_frames == 240 == 10 * 24
    assert (limits.min_fps, limits.max_fps) == (1, 60)
    assert limits.max_resolution == 1024
    assert limits.max_projection_steps == 300
    # what a visitor meets: the caps at the bundled models' 64 px
    assert limits.frames_allowed(64) == 240
    assert limits.projection_steps_allowed(64) == 300
