"""The app's Edit tab (SeFa sliders) and nearest-training-image view, called as Gradio would call them.

Every test here goes through the Gradio events, gradio's own ``gr.Error`` or ``app.ui_edit`` (a gradio
module), so gradio is imported once at the top; the tests without it are beside their subjects:
``app.edit.edit_grid``'s layout in test_edit_cli_options.py, ``nearest_index``'s refusal without cached
features in test_nearest.py.
"""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import app.ui_edit
from app.display import for_display
from app.models import ModelStore
from app.nearest_view import NearestIndex
from app.sampling import generate_images
from app.ui import build_demo
from families import load_generator
from metric_utils import StandInFeatures

ZERO = (0.0,) * app.ui_edit.SLIDERS


@pytest.fixture(scope="module")
def events(weights, tmp_path_factory):
    store = ModelStore({"sg": str(weights["stylegan_lite"]), "pg": str(weights["progan"])})
    demo = build_demo(store, output_dir=tmp_path_factory.mktemp("app-out"))
    return {f.api_name: f.fn for f in demo.fns.values() if f.api_name}


@pytest.mark.parametrize("model, family_name", [("sg", "stylegan_lite"), ("pg", "progan")])
def test_edit_event_at_zero_is_the_sample_and_a_slider_changes_it(events, weights, model, family_name):
    shown, status, native = events["edit"](model, "4", "all", 1.0, "fixed", *ZERO, None)
    expected = generate_images(load_generator(weights[family_name], progress=False), [4], noise="fixed")[0]
    np.testing.assert_array_equal(native, expected)
    np.testing.assert_array_equal(shown, for_display(expected))
    assert "no edit" in status and "seed 4" in status
    _, status, moved = events["edit"](model, "4", "all", 1.0, "fixed", 3.0, *ZERO[1:], None)
    assert np.abs(moved.astype(int) - expected).sum() > 0 and "d0 +3" in status


@pytest.mark.parametrize("args, match", [
    (("sg", "0", "0-99", 0.7, "fixed", *ZERO, None), "outside this model"),
    (("pg", "0", "1", 0.7, "fixed", *ZERO, None), "outside this model"),
    (("sg", "0", "2-1", 0.7, "fixed", *ZERO, None), "runs backwards"),
    (("sg", "0", "all", 0.7, "fixed", float("nan"), *ZERO[1:], None), "strength 0 must be between"),
    (("sg", "0", "all", 0.7, "fixed", 99.0, *ZERO[1:], None), "strength 0 must be between"),
    (("sg", "0,1", "all", 0.7, "fixed", *ZERO, None), "too many seeds"),
    (("sg", "image", "all", 0.7, "fixed", *ZERO, None), "needs a projected image"),
    (("sg", "0", "all", 0.7, "loud", *ZERO, None), "noise must be one of"),
])
def test_edit_event_refuses_with_one_line(events, args, match):
    with pytest.raises(gr.Error) as info:
        events["edit"](*args)
    assert match in str(info.value) and "\n" not in str(info.value)


def test_nearest_event_finds_the_training_image(events, weights, monkeypatch):
    g = load_generator(weights["stylegan_lite"], progress=False)
    samples = torch.from_numpy(generate_images(g, list(range(6)), noise="fixed")).permute(0, 3, 1, 2)
    network = StandInFeatures()
    index = NearestIndex(network, TensorDataset(samples), network(samples))  # the "training set" holds seed 4
    monkeypatch.setattr(app.ui_edit, "nearest_index", lambda resolution: index)
    _, _, native = events["edit"]("sg", "4", "all", 1.0, "fixed", *ZERO, None)
    pair, status = events["nearest"]("sg", native)
    assert "#4" in status and "distance 0.0" in status and "closer than" in status
    f = pair.shape[0] // 16                                               # display enlargement of 16 px
    np.testing.assert_array_equal(pair[::f, :16 * f:f], native)           # left: the edited image
    np.testing.assert_array_equal(pair[::f, 18 * f::f], samples[4].permute(1, 2, 0).numpy())  # right: its match
    with pytest.raises(gr.Error, match="draw an image first"):
        events["nearest"]("sg", None)


def test_a_grayscale_models_edit_keeps_its_native_pixels_and_finds_its_training_image(tmp_path, monkeypatch):
    """A 1-channel model: the Edit event shows ``[R, R]`` (what image widgets take) but keeps the generator's
    ``[R, R, 1]`` pixels (``generate_images``) as the state the nearest view searches with; that view sees the
    picture as the metrics do (gray in all three channels, ``progan.metrics.channels``), finds it at distance
    0 in a training set that holds seed 4's picture so replicated, and draws it left as RGB."""
    import dataclasses

    from families import FAMILIES
    from progan.metrics.channels import RGBView
    from progan.networks import Generator

    torch.manual_seed(0)
    Generator(dataclasses.replace(FAMILIES["progan"].presets["tiny"], image_channels=1)).save_pretrained(tmp_path / "g")
    store = ModelStore({"gray": str(tmp_path / "g")})
    events = {f.api_name: f.fn for f in build_demo(store, output_dir=tmp_path / "out").fns.values() if f.api_name}
    expected = generate_images(load_generator(tmp_path / "g", progress=False), list(range(6)), noise="fixed")
    assert expected.shape == (6, 16, 16, 1)
    shown, _, native = events["edit"]("gray", "4", "all", 1.0, "fixed", *ZERO, None)
    np.testing.assert_array_equal(shown, expected[4, ..., 0])
    assert native.shape == (16, 16, 1)
    np.testing.assert_array_equal(native, expected[4])
    reals = torch.from_numpy(np.repeat(expected, 3, axis=3)).permute(0, 3, 1, 2)        # [6, 3, 16, 16]
    network = RGBView(StandInFeatures())
    index = NearestIndex(network, TensorDataset(reals), network(reals))
    monkeypatch.setattr(app.ui_edit, "nearest_index", lambda resolution: index)
    pair, status = events["nearest"]("gray", native)
    assert "#4" in status and "distance 0.0" in status
    rgb = np.repeat(expected[4], 3, axis=2)
    np.testing.assert_array_equal(pair[:, :16], rgb)
    np.testing.assert_array_equal(pair[:, 18:], rgb)


@pytest.mark.slow
def test_edit_endpoint_of_the_running_app(app_launcher, weights):
    # the real server through gradio_client: the edit endpoint draws, a bad layer range is one line, and
    # the server keeps serving afterwards
    gradio_client = pytest.importorskip("gradio_client")
    from gradio_client.exceptions import AppError

    url = app_launcher("--weights", str(weights["stylegan_lite"]))
    client = gradio_client.Client(url, verbose=False)
    assert {"/edit", "/nearest"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    model = weights["stylegan_lite"].name
    shown, status = client.predict(model, "3", "0-3", 1.0, "fixed", 2.0, 0, 0, 0, 0, api_name="/edit")
    assert "seed 3, layers 0-3: d0 +2" in status
    with pytest.raises(AppError, match="outside this model"):
        client.predict(model, "3", "0-40", 1.0, "fixed", *ZERO, api_name="/edit")
    _, status = client.predict(model, "3", "all", 1.0, "fixed", *ZERO, api_name="/edit")
    assert "no edit" in status


def test_a_negative_strength_moves_the_other_way(events):
    """Strengths are signed: -3 sigmas is accepted, moves the image, and not to where +3 does."""
    _, _, still = events["edit"]("sg", "4", "all", 1.0, "fixed", *ZERO, None)
    _, status, down = events["edit"]("sg", "4", "all", 1.0, "fixed", -3.0, *ZERO[1:], None)
    _, _, up = events["edit"]("sg", "4", "all", 1.0, "fixed", 3.0, *ZERO[1:], None)
    assert "d0 -3" in status
    assert np.abs(down.astype(int) - still).sum() > 0 and np.abs(down.astype(int) - up).sum() > 0


@pytest.mark.parametrize("distance, verdict", [(3.0, "closer than"), (5.0, "farther than"), (7.5, "farther than")])
def test_nearest_image_puts_the_edited_image_left_and_its_match_right(monkeypatch, distance, verdict):
    """``nearest_image`` of an edited image that differs from every training image (so a swap shows): the
    picture is [edited | 2 white columns | nearest training image], as its label "Edited | nearest training
    image" says; the verdict compares the distance with the median yardstick 5.0 strictly (5.0 is not closer)."""
    from app.nearest_view import NearestMatch

    rng = np.random.default_rng(7)
    edited, real = (rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(2))
    asked = []

    class Index:
        def match(self, image):
            asked.append(image)
            return NearestMatch(real, index=3, distance=distance, threshold=5.0, num_real=9)

    monkeypatch.setattr(app.ui_edit, "nearest_index", lambda resolution: asked.append(resolution) or Index())
    pair, status = app.ui_edit.nearest_image(edited, 16)
    assert asked[0] == 16 and asked[1] is edited
    assert pair.shape == (16, 16 + 2 + 16, 3)
    np.testing.assert_array_equal(pair[:, :16], edited)
    assert (pair[:, 16:18] == 255).all()
    np.testing.assert_array_equal(pair[:, 18:], real)
    assert status == (f"nearest of 9 training images: #3, Inception distance {distance:.1f}, {verdict} the median "
                      f"real-to-real nearest distance (5.0).")


def test_the_edit_button_runs_the_public_edit_endpoint(weights, tmp_path):
    """The "Edit" button (elem_id ``edit``) is what a visitor presses: its click must run the edit event under
    the public API name ``edit`` (the seed box and sliders run the same function privately, so the
    endpoint alone does not show that the button is wired)."""
    store = ModelStore({"sg": str(weights["stylegan_lite"])})
    demo = build_demo(store, output_dir=tmp_path)
    (button,) = [b for b in demo.blocks.values() if isinstance(b, gr.Button) and b.elem_id == "edit"]
    clicked = [f for f in demo.fns.values() if (button._id, "click") in [tuple(t) for t in f.targets]]
    assert [(f.api_name, f.api_visibility) for f in clicked] == [("edit", "public")]
