"""``python -m app``'s flags and the store's labels, limits and nearest yardstick at values other than
the defaults (issue 20, red-team pass R5): each flag must arrive where it acts, not just parse.

- ``--concurrency`` / ``--max-queue`` reach ``demo.queue``; their bounds (1..64, at least 1) at the edge;
  ``--concurrency``, ``--port`` and ``--host`` default to the values their help states;
  a bad ``--device`` or a missing ``--weights`` file is one line on stderr and exit status 2, not a traceback;
- labels: ``run/model.safetensors`` is "run", ``dir/foo.safetensors`` is "foo"; three launch sources
  with one label become "run", "run (2)", "run (3)", each keeping its own source;
- a visitor URL whose load fails leaves the switcher as it was;
- an empty cutoff means every layer; "Image" in a seed box names the projection whatever its case;
- ``NearestIndex.threshold`` is the *median* real-to-real nearest distance, self excluded, on points whose
  distances are known by hand (1, 1, 2, 4, 13: median 2, mean 4.2).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import app.models
from app.limits import DEFAULT_LIMITS, check_truncation
from app.models import ModelStore, launch_sources
from model_utils import save_tiny_weights, tiny_stylegan


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


class _NoServer:
    def __init__(self, calls):
        self.calls = calls

    def queue(self, **kwargs):
        self.calls.append(kwargs)

    def launch(self, **_kwargs):
        pass


def test_concurrency_and_max_queue_reach_the_queue(weights, monkeypatch):
    import app.__main__ as entry
    import app.ui

    calls: list = []
    monkeypatch.setattr(app.ui, "build_demo", lambda store, **_kwargs: _NoServer(calls))
    try:
        assert entry.main(["--weights", str(weights / "sg"), "--concurrency", "5", "--max-queue", "7"]) == 0
    finally:
        torch.set_grad_enabled(True)
    assert calls == [{"default_concurrency_limit": 5, "max_size": 7}]


@pytest.mark.parametrize("flags, ok", [
    (["--concurrency", "1"], True), (["--concurrency", "64"], True), (["--concurrency", "0"], False),
    (["--concurrency", "65"], False), (["--max-queue", "1"], True), (["--max-queue", "0"], False),
])
def test_queue_flag_bounds(flags, ok):
    from app.__main__ import parse_args

    if ok:
        parse_args(flags)
    else:
        with pytest.raises(SystemExit):
            parse_args(flags)


def test_a_bad_device_is_one_line_and_status_2(weights, capsys):
    from app.__main__ import main

    assert main(["--weights", str(weights / "sg"), "--device", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_weights_file_is_one_line_and_status_2(weights, tmp_path, capsys):
    """A missing file is an OSError (FileNotFoundError), not a ValueError: it too is a load error, one line
    naming the path, not a traceback."""
    from app.__main__ import main

    missing = tmp_path / "no-such-run" / "model.safetensors"
    assert main(["--weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no-such-run" in err


def test_launch_labels_are_unique_and_keep_their_sources():
    sources = ["x/run/model.safetensors", "y/run/model.safetensors", "z/run/", "d/foo.safetensors"]
    assert launch_sources(sources) == {"run": sources[0], "run (2)": sources[1], "run (3)": sources[2],
                                       "foo": sources[3]}


def test_a_failed_visitor_url_leaves_the_switcher_as_it_was(monkeypatch):
    def failing(source, **_kwargs):
        raise ValueError(f"{source}: 404")

    monkeypatch.setattr(app.models, "load_generator", failing)
    store = ModelStore({"a": "a"}, allow_remote=True)
    with pytest.raises(ValueError, match="404"):
        store.add_remote("https://example.invalid/x/model.safetensors")
    assert store.labels == ["a"] and not store._loaded and not store._loading


def test_an_empty_cutoff_means_every_layer():
    config = tiny_stylegan().config
    assert check_truncation(config, 0.5, "", DEFAULT_LIMITS) == (0.5, None)
    assert check_truncation(config, 0.5, 2, DEFAULT_LIMITS) == (0.5, 2)


@pytest.mark.parametrize("text", ["image", "Image, 3", "1, IMAGE"])
def test_the_image_token_is_recognised_in_any_case(text):
    from app.ui import _projection_for

    mine = SimpleNamespace(metadata={"model": "sg"})
    assert _projection_for("sg", mine, text) is mine
    assert _projection_for("sg", mine, "1, 2") is None


def test_nearest_threshold_is_the_median_nearest_distance_without_self():
    from app.nearest_view import NearestIndex

    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0], [20.0, 0.0]])
    images = torch.arange(5 * 3 * 2 * 4, dtype=torch.uint8).reshape(5, 3, 2, 4)  # 2 high, 4 wide
    index = NearestIndex(lambda pixels: torch.tensor([[6.0, 0.0]]), images, points)
    assert index.threshold == pytest.approx(2.0)  # nearest distances 1, 1, 2, 4, 13
    found = index.match(torch.zeros(2, 4, 3, dtype=torch.uint8).numpy())
    assert (found.index, found.distance, found.num_real) == (3, pytest.approx(1.0), 5)
    assert (found.real == images[3].permute(1, 2, 0).numpy()).all() and found.real.shape == (2, 4, 3)


def test_a_visitor_url_is_trimmed_and_its_scheme_is_any_case(monkeypatch):
    monkeypatch.setattr(app.models, "load_generator", lambda source, **_kwargs: tiny_stylegan())
    store = ModelStore({"a": "a"}, allow_remote=True)
    url = "HTTPS://example.invalid/x/model.safetensors"
    assert store.add_remote(f"  {url}\n") == url and store.labels == ["a", url]
    assert store.add_remote("Hf://org/repo") == "Hf://org/repo"


def test_frames_allowed_floor_is_two_and_bools_are_not_integers():
    from app.limits import Limits, check_int

    assert Limits(max_video_pixels=0).frames_allowed(16) == 2     # an interpolation needs two frames
    assert DEFAULT_LIMITS.frames_allowed(1024) == 15               # 240 * 256**2 // 1024**2
    with pytest.raises(ValueError, match="must be an integer"):
        check_int("frames", True, 0, 10)


@pytest.fixture(scope="module")
def events(weights, tmp_path_factory):
    from app.ui import build_demo

    demo = build_demo(ModelStore({"sg": str(weights / "sg")}), output_dir=tmp_path_factory.mktemp("out"))
    return {f.api_name: f.fn for f in demo.fns.values() if f.api_name}


def test_interpolation_takes_up_to_max_keyframes_seeds(events):
    """16 keyframes (the default max_keyframes, above max_mix_seeds = 8) pass; 17 are refused."""
    *_, status = events["interpolate"]("sg", "0-15", 16, 24, "lerp", "z", False, 1.0, "fixed")
    assert "through seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (16 seeds)" in status
    with pytest.raises(Exception, match="too many"):
        events["interpolate"]("sg", "0-16", 17, 24, "lerp", "z", False, 1.0, "fixed")


def test_sample_status_lists_twelve_seeds_then_the_count(events):
    *_, status = events["sample"]("sg", "0-12", 1.0, None, "fixed")
    assert "seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (13 seeds)" in status
    *_, status = events["sample"]("sg", "0-11", 1.0, None, "fixed")     # exactly twelve: all listed, no count
    assert status.endswith("seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11")
    *_, status = events["sample"]("sg", "3,5", 1.0, None, "fixed")
    assert status.endswith("seeds 3, 5")


def test_seed_box_and_steps_open_on_at_most_sixteen_seeds_and_200_steps(weights, tmp_path):
    """The seed box's default is 16 seeds when the limits allow more (default limits: 64 at 16 px), so a
    generous limit does not make the first page draw 64 images; the lower cap is test_app_checks' SMALL."""
    from app.ui import build_demo

    assert DEFAULT_LIMITS.images_allowed(16) > 16
    demo = build_demo(ModelStore({"sg": str(weights / "sg")}), output_dir=tmp_path)
    boxes = [b for b in demo.blocks.values() if getattr(b, "label", None) == "Seeds"]
    assert boxes and {b.value for b in boxes} == {"0-15"}
    # the projection's steps slider likewise opens on 200 under a cap of DEFAULT_LIMITS' 300
    assert DEFAULT_LIMITS.max_projection_steps > 200
    sliders = [b for b in demo.blocks.values() if getattr(b, "label", None) == "Steps"]
    assert len(sliders) == 1 and sliders[0].value == 200 and sliders[0].maximum == DEFAULT_LIMITS.max_projection_steps


def test_the_flag_defaults_are_the_ones_the_help_states(capsys):
    """``--concurrency`` (2), ``--port`` (7860) and ``--host`` (127.0.0.1) default to what ``--help`` says:
    the stated value is read from the help text, not from the parser's defaults."""
    import re

    from app.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = text.split("show this help message and exit", 1)[1]  # past the usage line
    args = parse_args([])
    for flag in ("concurrency", "port", "host"):
        stated = re.search(rf"--{flag} [A-Z_]+ [^()]*\(default: ([^,)]+)", options)
        assert stated is not None, flag
        assert str(getattr(args, flag)) == stated.group(1), flag
