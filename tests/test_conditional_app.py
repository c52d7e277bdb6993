"""Class-conditional models in the app (sampling, interpolation and mixing events, the class dropdowns)
and ``app.project --class``.

Expected images come from ``bind_class`` and the app's sampling core called by the test, so a class
that is ignored (or swapped) somewhere between the request and the generator shows as other pixels.
"""
from __future__ import annotations

import dataclasses

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from app.sampling import generate_images, make_grid
from families import FAMILIES
from progan.conditioning import bind_class

CLASSES = ("blue", "red")


def _conditional(family: str, seed: int = 0):
    torch.manual_seed(seed)
    config = dataclasses.replace(FAMILIES[family].presets["tiny"], class_names=CLASSES)
    g = FAMILIES[family].generator_cls(config).eval()
    if family == "stylegan_lite":
        with torch.no_grad():
            g.synthesis.input.weight.normal_()  # a trained-looking constant input: images differ visibly
            g.w_avg.copy_(torch.randn(g.config.w_dim))
    return g


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    for family in FAMILIES:
        _conditional(family).save_pretrained(root / f"{family}-cond")
    torch.manual_seed(0)
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(root / "plain")
    return root


@pytest.fixture(scope="module")
def demo(weights, tmp_path_factory):
    from app.models import ModelStore
    from app.ui import build_demo

    store = ModelStore({"sg": str(weights / "stylegan_lite-cond"), "pg": str(weights / "progan-cond"),
                        "plain": str(weights / "plain")})
    return build_demo(store, output_dir=tmp_path_factory.mktemp("app-out")), store


def _events(demo):
    return {f.api_name: f.fn for f in demo[0].fns.values()}


@pytest.mark.parametrize("model", ["sg", "pg"])
def test_sample_event_draws_the_chosen_class(demo, model):
    sample, store = _events(demo)["sample"], demo[1]
    grids = {}
    for name in CLASSES:
        _, grid, _ = sample(model, "0-3", 0.7, 6, "fixed", name)
        expected = make_grid(generate_images(bind_class(store.get(model), name), [0, 1, 2, 3], psi=0.7, cutoff=6,
                                             noise="fixed"))
        grids[name] = np.asarray(Image.open(grid), dtype=int)
        assert np.abs(grids[name] - np.asarray(expected, dtype=int)).max() <= 1
    assert np.abs(grids["blue"] - grids["red"]).max() > 8
    # no class: the first one, as app.generate does
    _, grid, _ = sample(model, "0-3", 0.7, 6, "fixed", None)
    assert np.abs(np.asarray(Image.open(grid), dtype=int) - grids["blue"]).max() <= 1


def test_unknown_class_is_one_line(demo):
    events = _events(demo)
    calls = [(events["sample"], ("sg", "0", 0.7, 6, "fixed", "green")),
             (events["interpolate"], ("sg", "1,2", 3, 12, "lerp", "z", False, 0.7, "fixed", "green")),
             (events["mix"], ("sg", "1", "2", "coarse", 0.7, "fixed", "green")),
             (events["sample"], ("plain", "0", 0.7, 6, "fixed", "red"))]
    messages = []
    for fn, args in calls:
        with pytest.raises(gr.Error) as info:
            fn(*args)
        messages.append(str(info.value))
    assert all("unknown class 'green'; choose from 'blue', 'red'" in m and "\n" not in m for m in messages[:3])
    assert "unconditional" in messages[3] and "\n" not in messages[3]
    events["sample"]("plain", "0", 0.7, 6, "fixed", None)  # an unconditional model without a class serves


def test_interpolation_and_mixing_use_the_class(demo):
    from app.interpolation import render_interpolation
    from app.mixing import mixing_figure, render_mixing

    events, store = _events(demo), demo[1]
    generator = store.get("sg")
    _, gif, _ = events["interpolate"]("sg", "1,2", 3, 12, "lerp", "z", False, 0.7, "fixed", "red")
    clip = render_interpolation(bind_class(generator, "red"), [1, 2], frames=3, space="z", method="lerp",
                                loop=False, psi=0.7, noise="fixed")
    with Image.open(gif) as image:
        image.seek(2)
        last = np.asarray(image.convert("RGB"), dtype=int)
    last = last[:: last.shape[0] // 16, :: last.shape[1] // 16]                    # shown enlarged, nearest
    assert np.abs(last - np.asarray(clip[2], dtype=int)[..., :3]).max() <= 24  # GIF palette quantization
    blue = render_interpolation(bind_class(generator, "blue"), [1, 2], frames=3, space="z", method="lerp",
                                loop=False, psi=0.7, noise="fixed")
    assert np.abs(np.asarray(clip[2], dtype=int) - np.asarray(blue[2], dtype=int)).max() > 24
    _, download, _ = events["mix"]("sg", "1", "2,3", "coarse", 0.7, "fixed", "red")
    rows, cols, cells = render_mixing(bind_class(generator, "red"), [1], [2, 3], styles="coarse", psi=0.7,
                                      noise="fixed")
    expected = np.asarray(mixing_figure(rows, cols, cells).convert("RGB"), dtype=int)
    assert np.abs(np.asarray(Image.open(download).convert("RGB"), dtype=int) - expected).max() <= 1


def test_class_dropdowns_follow_the_model(demo):
    events = _events(demo)
    *_, s_class, i_class, m_class, status = events["switch_model"]("pg", "sg")
    assert "Loaded" in status
    for update in (s_class, i_class, m_class):
        assert update["visible"] is True and [c[0] if isinstance(c, tuple) else c for c in update["choices"]] \
            == list(CLASSES) and update["value"] == "blue"
    *_, s_class, _, _, _ = events["switch_model"]("plain", "pg")
    assert s_class["visible"] is False and s_class["value"] is None
    dropdowns = [b for b in demo[0].blocks.values() if getattr(b, "elem_id", None) in
                 ("sample-class", "interpolate-class", "mix-class")]
    assert len(dropdowns) == 3 and all(d.visible for d in dropdowns)  # the first model ("sg") is conditional


# --- app.project --class ----------------------------------------------------------------------------

@pytest.mark.parametrize("family", list(FAMILIES))
def test_project_on_a_class(weights, tmp_path, capsys, family):
    from app.projection.cli import main
    from app.projection import Projection

    source = weights / f"{family}-cond"
    generator = _conditional(family)
    target = generate_images(bind_class(generator, "red"), [7], noise="fixed")[0]
    Image.fromarray(target).save(tmp_path / "red.png")
    assert main([str(tmp_path / "red.png"), "--weights", str(source), "--out", str(tmp_path / "p"),
                 "--steps", "5", "--class", "red", "--device", "cpu"]) == 0
    projection = Projection.load(tmp_path / "p" / "latent.safetensors")
    assert projection.metadata["class"] == "red"
    saved = np.asarray(Image.open(tmp_path / "p" / "reconstruction.png"), dtype=int)
    from app.projection import reconstruction_pixels

    with torch.no_grad():
        as_red = reconstruction_pixels(projection.render(bind_class(generator, "red"))).astype(int)
        as_blue = reconstruction_pixels(projection.render(bind_class(generator, "blue"))).astype(int)
    assert np.abs(saved - as_red).max() <= 1          # rendered as red
    if family == "progan":                            # z space: the class is applied when rendering
        assert np.abs(saved - as_blue).max() > 1
    # the search itself runs in the class's space (StyleGAN-lite: it starts from the class's mean w)
    assert main([str(tmp_path / "red.png"), "--weights", str(source), "--out", str(tmp_path / "b"),
                 "--steps", "5", "--class", "blue", "--device", "cpu"]) == 0
    as_blue_search = Projection.load(tmp_path / "b" / "latent.safetensors")
    assert as_blue_search.metadata["class"] == "blue"
    assert (as_blue_search.latent - projection.latent).abs().max() > 1e-3
    assert main([str(tmp_path / "red.png"), "--weights", str(source), "--out", str(tmp_path / "q"),
                 "--steps", "5", "--class", "green"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: unknown class 'green'; choose from 'blue', 'red'"
