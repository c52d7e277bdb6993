"""The app's own protections, exercised where they live (app/ui.py, app/limits.py, app/models.py,
app/sampling.py), not where Gradio's component validation would refuse a request first.

- Every event function of ``build_demo`` is called directly with values Gradio's sliders and radios
  would refuse, and with values only the server can judge (per-resolution pixel and frame caps,
  under ``Limits`` small enough to bite at 16 px).
- Truncation (Karras et al. 2019, appendix B): psi changes the images; psi=0 gives one image,
  ``w_avg``'s, for every seed -- in the sampling core, the app event and the CLI.
- Noise: every event's Noise radio (sample, interpolate, mix, edit) reaches the drawing: each mode gives
  the pixels of the sampling core called with that mode, and the three modes differ.
- ``ModelStore``: tests/test_app_store.py.
"""
from __future__ import annotations

import math

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from app.generate import main as generate_main
from app.limits import Limits
from app.interpolation import render_interpolation
from app.mixing import mixing_figure, render_mixing
from app.models import ModelStore
from app.sampling import NOISE_MODES, generate_images, styles_from_z
from app.ui import build_demo
from app.ui_edit import SLIDERS
from app.video import write_gif
from families import load_generator
from image_utils import read_frames
from model_utils import save_tiny_weights, tiny_stylegan

SMALL = Limits(max_pixels=4 * 16 * 16, max_video_pixels=5 * 16 * 16)  # 16 px: 4 images, 5 frames, 4 cells


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def demo(weights, tmp_path_factory):
    store = ModelStore({"sg": str(weights / "sg"), "pg": str(weights / "pg")})
    return build_demo(store, limits=SMALL, output_dir=tmp_path_factory.mktemp("app-out"))


@pytest.fixture(scope="module")
def events(demo):
    return {f.api_name: f.fn for f in demo.fns.values()}


def _component(demo, elem_id: str):
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_page_opens_with_the_default_models_first_seeds(demo, weights):
    # no click needed: the gallery's initial value is what Generate would draw with the default inputs,
    # as many seeds as the limits allow for the default model (SMALL: 4 at 16 px)
    gallery, grid, status = (_component(demo, name).value for name in ("gallery", "grid", "sample-status"))
    expected = generate_images(load_generator(str(weights / "sg"), progress=False), [0, 1, 2, 3], psi=0.7,
                               cutoff=6, noise="random")
    assert [item["caption"] for item in gallery] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    for item, native in zip(gallery, expected):
        with Image.open(item["image"]["path"]) as image:
            assert np.abs(np.asarray(image.convert("RGB"), dtype=int) - native).max() <= 1
    with Image.open(grid["path"]) as image:
        assert image.size == (2 * 16, 2 * 16)
    assert status.startswith("4 images in") and "seeds 0, 1, 2, 3" in status


def _refused(fn, *args, match: str) -> None:
    with pytest.raises(gr.Error) as info:
        fn(*args)
    assert match.lower() in str(info.value).lower(), str(info.value)


@pytest.mark.parametrize("args, match", [
    (("sg", "1", 2.5, 6, "random"), "psi must be between -1 and 2"),
    (("sg", "1", -1.5, 6, "random"), "psi must be between -1 and 2"),
    (("sg", "1", float("nan"), 6, "random"), "psi must be between"),
    (("sg", "1", 0.7, 7, "random"), "cutoff must be between 0 and 6"),
    (("sg", "1", 0.7, 2.5, "random"), "whole number"),
    (("sg", "1", 0.7, 6, "loud"), "noise must be one of"),
    (("sg", "0-4", 0.7, 6, "random"), "at most 4"),   # 16 px under SMALL: 4 images per request
    (("pg", "1", 0.7, 7, "fixed"), "cutoff must be between 0 and 6"),  # checked for ProGAN too
])
def test_sample_event_checks(events, args, match):
    _refused(events["sample"], *args, match=match)


def test_sample_event_serves_up_to_the_cap(events):
    gallery, grid, status = events["sample"]("sg", "0-3", 0.7, 6, "random")
    assert len(gallery) == 4 and status.startswith("4 images")


def test_sample_event_sends_native_pixels(events, weights):
    # the page enlarges them (CSS image-rendering: pixelated); an enlarged copy would cost 16x the encoding
    gallery, grid, _ = events["sample"]("sg", "5,9", 1.0, 6, "fixed")
    expected = generate_images(load_generator(str(weights / "sg"), progress=False), [5, 9], noise="fixed")
    for (image, caption), native, seed in zip(gallery, expected, (5, 9)):
        assert image.shape == (16, 16, 3) and caption == f"seed {seed}"
        assert np.abs(image.astype(int) - native).max() <= 1               # batch size may move a level
    with Image.open(grid) as image:
        assert image.size == (2 * 16, 16)


@pytest.mark.parametrize("args, match", [
    (("sg", "1,2", 6, 12, "lerp", "z", False, 0.7, "fixed"), "frames must be between 2 and 5"),
    (("sg", "1,2", 1, 12, "lerp", "z", False, 0.7, "fixed"), "frames must be between 2 and 5"),
    (("sg", "1,2", 4, 61, "lerp", "z", False, 0.7, "fixed"), "fps must be between 1 and 60"),
    (("sg", "1,2", 4, 0, "lerp", "z", False, 0.7, "fixed"), "fps must be between 1 and 60"),
    (("sg", "1,2", 4, 12, "cubic", "z", False, 0.7, "fixed"), "method must be one of"),
    (("sg", "1,2", 4, 12, "cubic", "w", False, 0.7, "fixed"), "method must be one of"),  # W walks always lerp
    (("sg", "1,2", 4, 12, "lerp", "q", False, 0.7, "fixed"), "space must be one of"),
    (("sg", "1,2", 4, 12, "lerp", "z", False, 3.0, "fixed"), "psi must be between"),
    (("sg", "1,2", 4, 12, "lerp", "z", False, 0.7, "loud"), "noise must be one of"),
    (("sg", "1", 4, 12, "lerp", "z", False, 0.7, "fixed"), "at least two seeds"),
    (("sg", "0-16", 4, 12, "lerp", "z", False, 0.7, "fixed"), "too many seeds"),
])
def test_interpolate_event_checks(events, args, match):
    _refused(events["interpolate"], *args, match=match)


@pytest.mark.parametrize("args, match", [
    (("sg", "1,2", "3", "coarse", 0.7, "fixed"), "too large for this model"),  # 3 x 2 = 6 cells > 4
    (("sg", "1", "3", "everything", 0.7, "fixed"), "styles must be one of"),
    (("sg", "1", "3", "coarse", 2.5, "fixed"), "psi must be between"),
    (("sg", "1", "3", "coarse", 0.7, "loud"), "noise must be one of"),
    (("sg", "0-8", "3", "coarse", 0.7, "fixed"), "too many seeds"),
])
def test_mix_event_checks(events, args, match):
    _refused(events["mix"], *args, match=match)


def test_mix_event_serves_up_to_the_cap(events):
    shown, download, _ = events["mix"]("sg", "1", "3", "coarse", 0.7, "fixed")  # 2 x 2 = 4 cells
    with Image.open(download) as image, Image.open(shown) as figure:
        assert image.size == figure.size == (32, 32)   # native: the page enlarges the shown copy


def test_unknown_model_is_refused(events):
    _refused(events["model_info"], "../../etc/passwd", match="unknown model")


def test_model_info_describes_the_model_it_is_asked_about(events, weights):
    """The ``/model_info`` API (checked end to end only by the slow tests/test_app_server.py): asked about
    "pg" while "sg" is the default, it describes the tiny ProGAN (family, 16x16, latent size, its weights
    folder) and returns the config saved with those weights (``config.json``, read back here); asked about
    "sg", the StyleGAN-lite with its style-layer count."""
    from progan.hub.export import read_metadata

    for label, family, other in (("pg", "ProGAN", "StyleGAN-lite"), ("sg", "StyleGAN-lite", "ProGAN")):
        info, config = events["model_info"](label)
        saved = read_metadata(weights / label)["config"]
        assert config == saved and saved["resolution"] == 16, label
        assert info.startswith(f"### {label}\n") and f"| family | {family} |" in info and other not in info
        assert "| resolution | 16×16 |" in info and f"| latent size | {saved['latent_dim']} |" in info
        assert str(weights / label).endswith(info.split("| weights | `")[1].split("`")[0]), info
        assert ("| style layers (ws) |" in info) == (label == "sg")


# --- truncation -------------------------------------------------------------------------------
def test_styles_from_z_truncates_towards_w_avg():
    generator = tiny_stylegan()
    z = torch.randn(5, generator.config.latent_dim)
    with torch.no_grad():
        full = styles_from_z(generator, z, psi=1.0)
        half = styles_from_z(generator, z, psi=0.5)
        zero = styles_from_z(generator, z, psi=0.0)
        partial = styles_from_z(generator, z, psi=0.0, cutoff=2)
    w_avg = generator.w_avg.view(1, 1, -1)
    torch.testing.assert_close(half, w_avg + 0.5 * (full - w_avg))
    torch.testing.assert_close(zero, w_avg.expand_as(full))
    torch.testing.assert_close(partial[:, :2], w_avg.expand(5, 2, -1))
    torch.testing.assert_close(partial[:, 2:], full[:, 2:])


def test_psi_changes_images_and_psi_zero_gives_one_image():
    generator = tiny_stylegan()
    seeds = [0, 1, 2, 3]
    full = generate_images(generator, seeds, psi=1.0, noise="fixed")
    half = generate_images(generator, seeds, psi=0.5, noise="fixed")
    zero = generate_images(generator, seeds, psi=0.0, noise="fixed")
    assert all(not np.array_equal(a, b) for a, b in zip(full, half))
    assert len({image.tobytes() for image in full}) == 4
    assert len({image.tobytes() for image in zero}) == 1
    with torch.no_grad():  # and that one image is w_avg's
        ws = generator.w_avg.view(1, 1, -1).repeat(1, generator.num_ws, 1)
        average = generator.synthesis(ws, noise_mode="const")
    expected = ((average.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0]
    assert np.abs(zero[0].astype(int) - expected.astype(int)).max() <= 1


def test_sample_event_psi_zero_gives_one_image(events):
    gallery, _, _ = events["sample"]("sg", "0-3", 0.0, 6, "fixed")
    images = [np.asarray(image) for image, _caption in gallery]
    assert all(np.array_equal(images[0], image) for image in images[1:])
    gallery, _, _ = events["sample"]("sg", "0-3", 1.0, 6, "fixed")
    assert len({np.asarray(image).tobytes() for image, _ in gallery}) == 4


def _cells(path, n: int, size: int = 16) -> list[np.ndarray]:
    grid = np.asarray(Image.open(path).convert("RGB"))
    cols = math.ceil(math.sqrt(n))
    return [grid[(i // cols) * size:(i // cols + 1) * size, (i % cols) * size:(i % cols + 1) * size] for i in range(n)]


def test_cli_psi(weights, tmp_path):
    for psi, distinct in (("0", 1), ("1", 4)):
        out = tmp_path / f"psi{psi}.png"
        assert generate_main(["--weights", str(weights / "sg"), "--seeds", "0-3", "--psi", psi, "--noise", "fixed",
                              "--out", str(out)]) == 0
        assert len({cell.tobytes() for cell in _cells(out, 4)}) == distinct


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """``(generator, events)`` for tiny StyleGAN-lite weights whose noise changes pixels (a fresh
    model's noise strengths are 0, so every noise mode would draw the same image)."""
    generator = tiny_stylegan()
    with torch.no_grad():
        for layer in generator.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    path = tmp_path_factory.mktemp("noisy") / "sg"
    generator.save_pretrained(path)
    demo = build_demo(ModelStore({"sg": str(path)}), output_dir=tmp_path_factory.mktemp("noisy-out"))
    return load_generator(str(path), progress=False), {f.api_name: f.fn for f in demo.fns.values()}


@pytest.mark.parametrize("event", ["sample", "interpolate", "mix", "edit"])
def test_every_event_draws_with_the_noise_it_is_given(noisy, tmp_path, event):
    generator, events = noisy
    drawn = {}
    for noise in NOISE_MODES:
        if event == "sample":
            gallery, _grid, _ = events["sample"]("sg", "3,7", 0.7, None, noise)
            got = np.stack([image for image, _caption in gallery])
            expected = generate_images(generator, [3, 7], psi=0.7, noise=noise)
        elif event == "interpolate":
            _mp4, gif, _ = events["interpolate"]("sg", "3,7", 4, 8, "lerp", "z", False, 0.7, noise)
            got = read_frames(gif)
            clip = render_interpolation(generator, [3, 7], frames=4, method="lerp", psi=0.7, noise=noise)
            expected = read_frames(write_gif(clip, tmp_path / f"{noise}.gif", fps=8))
        elif event == "mix":
            _shown, figure, _ = events["mix"]("sg", "1", "5,6", "coarse", 0.7, noise)
            got = read_frames(figure)
            expected = np.asarray(mixing_figure(*render_mixing(generator, [1], [5, 6], styles="coarse", psi=0.7,
                                                               noise=noise)).convert("RGB"))[None]
        else:
            _shown, _status, got = events["edit"]("sg", "7", "all", 0.7, noise, *(0.0,) * SLIDERS, None)
            expected = generate_images(generator, [7], psi=0.7, noise=noise)[0]
        assert got.shape == expected.shape and np.abs(got.astype(int) - expected).max() <= 1, noise
        drawn[noise] = got
    assert len({image.tobytes() for image in drawn.values()}) == len(NOISE_MODES)  # so a lost mode shows
