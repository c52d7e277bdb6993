"""Grayscale and RGBA data end to end: data_prep --channels -> train -> export -> app.generate -> evaluate.

Expected pixels come from closed forms (ITU-R 601 luma, "over" compositing), not from the code under test.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image

import data_prep
from families import FAMILIES
from metric_utils import StandInFeatures
from progan.images import uint8_to_rgb
from progan.metrics.channels import RGBView, rgb_view
from progan.training.options import TrainConfig
from progan.training.trainer import Trainer


def _rgba_folder(path, count: int = 12, size: int = 16):
    """Opaque red squares on a fully transparent field whose hidden colour is junk (9, 9, 9)."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.zeros((size, size, 4), np.uint8)
        image[..., :3] = 9                                   # hidden colour under alpha 0
        y, x = rng.integers(0, size // 2, 2)
        image[y:y + size // 2, x:x + size // 2] = (200, 40 + 10 * i, 0, 255)
        image[0, -1] = (0, 0, 255, 128)                      # one half-transparent blue pixel
        Image.fromarray(image, "RGBA").save(path / f"{i:02d}.png")
    return path


def test_data_prep_channels_keep_gray_and_alpha(tmp_path):
    source = _rgba_folder(tmp_path / "src", count=2)
    top = np.array(Image.open(source / "00.png"))            # [16, 16, 4] as written
    for channels in (1, 3, 4):
        out = data_prep.prepare(source, tmp_path / f"c{channels}", resolution=16, channels=channels, workers=1,
                                progress=False)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["channels"] == channels and manifest["files"]["16"]["shape"] == [2, channels, 16, 16]
        dataset = data_prep.open_dataset(out, 16)
        image = dataset[0].numpy().transpose(1, 2, 0).astype(int)   # [16, 16, C]
        alpha = top[..., 3:].astype(int)
        on_white = (alpha * top[..., :3] + (255 - alpha) * 255 + 127) // 255   # "over" onto white
        if channels == 4:
            assert dataset.channels == 4
            np.testing.assert_array_equal(image[..., 3], top[..., 3])          # alpha kept exactly
            opaque = top[..., 3] == 255
            np.testing.assert_array_equal(image[opaque, :3], top[opaque, :3])
            assert (image[top[..., 3] == 0, :3] == 0).all()                     # hidden colour cleared
        elif channels == 3:
            np.testing.assert_allclose(image, on_white, atol=1)
        else:
            luma = on_white @ np.array([299, 587, 114]) / 1000               # ITU-R 601, PIL's 'L'
            assert image.shape[-1] == 1
            np.testing.assert_allclose(image[..., 0], luma, atol=1)
        # the lower pyramid level is the 2x2 box mean of every channel, alpha included
        small = data_prep.open_dataset(out, 8)[0].numpy().astype(int)
        full = dataset[0].numpy().astype(int)
        box = (full[:, 0::2, 0::2] + full[:, 0::2, 1::2] + full[:, 1::2, 0::2] + full[:, 1::2, 1::2] + 2) // 4
        np.testing.assert_array_equal(small, box)


def test_data_prep_cli_refuses_other_channel_counts(tmp_path, capsys):
    from data_prep.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--out", str(tmp_path / "o"), "--resolution", "16", "--channels", "2"])
    assert exit_info.value.code == 2
    assert "--channels" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_uint8_to_rgb_closed_forms():
    gray = torch.tensor([[[[0, 77], [200, 255]]]], dtype=torch.uint8)             # [1, 1, 2, 2]
    assert torch.equal(uint8_to_rgb(gray), gray.expand(1, 3, 2, 2))
    rgba = torch.tensor([[10, 20, 30, 0], [10, 20, 30, 255], [100, 0, 200, 51]], dtype=torch.uint8)
    rgba = rgba.T.reshape(1, 4, 3, 1)                                               # [1, 4, 3, 1]
    out = uint8_to_rgb(rgba, background=(0, 128, 255))[0, :, :, 0].T                # [3 pixels, 3]
    assert out[0].tolist() == [0, 128, 255]                                         # alpha 0: background
    assert out[1].tolist() == [10, 20, 30]                                          # alpha 255: the colour
    # alpha 51 = 20 %: 0.2 * colour + 0.8 * background, rounded
    assert out[2].tolist() == [round(0.2 * 100 + 0.8 * 0), round(0.8 * 128), round(0.2 * 200 + 0.8 * 255)]
    rgb = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    assert uint8_to_rgb(rgb) is rgb


def test_rgba_compositing_rounds_to_nearest_at_every_alpha():
    """Every alpha 0..255 of colour (201, 3, 77) over (0, 128, 255), against (a c + (255 - a) b) / 255 rounded
    in exact arithmetic (no ties: 255 is odd). The fixture above has only fractions below one half, where
    truncating gives the same; here most alphas have a fraction above it (a = 100: 78.8 -> 79)."""
    colour, background = (201, 3, 77), (0, 128, 255)
    alphas = torch.arange(256)
    rgba = torch.stack([torch.full((256,), c) for c in colour] + [alphas]).to(torch.uint8).reshape(1, 4, 256, 1)
    out = uint8_to_rgb(rgba, background=background)[0, :, :, 0].T                    # [256 alphas, 3]
    expected = [[round((a * c + (255 - a) * b) / 255) for c, b in zip(colour, background)] for a in range(256)]
    assert out.tolist() == expected


def test_rgb_view_keys_the_cache_by_background():
    network = StandInFeatures()
    assert rgb_view(network, channels=(3, 3)) is network                            # RGB caches unchanged
    white, black = (rgb_view(network, channels=(4, 4), background=bg) for bg in ((255,) * 3, (0, 0, 0)))
    assert isinstance(white, RGBView) and len({network.sha256, white.sha256, black.sha256}) == 3
    images = torch.zeros(2, 4, 8, 8, dtype=torch.uint8)                              # fully transparent
    assert torch.equal(white(images), network(torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)))
    # an RGB generator scored against RGBA or grayscale data: the data still needs the view
    for mixed in ((3, 4), (4, 3), (3, 1)):
        view = rgb_view(network, channels=mixed)
        assert isinstance(view, RGBView) and torch.equal(view(images), white(images)), mixed


def test_evaluate_cli_background_reaches_the_metric(tmp_path, monkeypatch, capsys):
    """evaluate.py --background R,G,B is the colour evaluate_generator composites RGBA onto, the one the
    JSON reports (a stand-in for the metric records what it was given; no features are computed)."""
    import dataclasses

    import evaluate
    import progan.metrics.evaluation

    data = data_prep.prepare(_rgba_folder(tmp_path / "src", count=4), tmp_path / "data", resolution=16, channels=4,
                             workers=1, progress=False)
    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], image_channels=4)
    FAMILIES["progan"].generator_cls(config).save_pretrained(tmp_path / "g")
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    seen = []
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: seen.append(k.get("background")) or {"fid": 1.0})
    for background, colour in (("0,128,255", (0, 128, 255)), ("255,255,255", (255, 255, 255))):
        capsys.readouterr()
        assert evaluate.main(["--weights", str(tmp_path / "g"), "--data", str(data), "--num", "4",
                              "--metrics", "fid", "--background", background]) == 0
        assert seen[-1] == colour and json.loads(capsys.readouterr().out)["background"] == list(colour)
    assert len(seen) == 2


@pytest.mark.parametrize("channels", [1, 4])
def test_gray_and_rgba_data_train_export_generate_evaluate(tmp_path, channels, monkeypatch, capsys):
    from app.generate import main as generate_main
    import evaluate

    data = data_prep.prepare(_rgba_folder(tmp_path / "src"), tmp_path / "data", resolution=16, channels=channels,
                             workers=1, progress=False)
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         kimg=0.06, batch_size=4, fade_kimg=0.02, stable_kimg=0.02, checkpoint_kimg=1.0,
                         sample_kimg=1.0, workers=0, log_every=5)
    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    assert trainer.model_config.image_channels == channels                          # taken from the dataset
    export = trainer.train()
    assert json.loads((export / "config.json").read_text())["config"]["image_channels"] == channels
    grid = Image.open(sorted((tmp_path / "run" / "samples").glob("*.png"))[-1])
    assert grid.mode == {1: "L", 4: "RGBA"}[channels]

    out = tmp_path / "grid.png"
    assert generate_main(["grid", "--weights", str(export), "--seeds", "0-3", "--columns", "2", "--out", str(out)]) == 0
    picture = Image.open(out)
    assert picture.mode == {1: "L", 4: "RGBA"}[channels] and picture.size == (32, 32)

    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    results = {}
    for background in ("255,255,255", "0,0,0"):
        capsys.readouterr()
        assert evaluate.main(["--weights", str(export), "--data", str(data), "--num", "8", "--batch", "4",
                              "--metrics", "fid,kid", "--background", background]) == 0
        results[background] = json.loads(capsys.readouterr().out)
    white, black = results.values()
    assert white["image_channels"] == white["channels_real"] == channels
    assert np.isfinite(white["fid"]) and np.isfinite(white["kid"])
    if channels == 4:  # the composite depends on the background: other pixels, other features
        assert white["fid"] != black["fid"] and white["background"] == [255, 255, 255]
    else:              # gray is replicated whatever the background
        assert white["fid"] == black["fid"] and "background" not in white


@pytest.mark.parametrize("channels", [1, 4])
def test_app_display_copies_of_gray_and_rgba_reach_the_gallery(channels):
    import gradio as gr

    from app.display import for_display

    image = np.random.default_rng(0).integers(0, 256, (16, 16, channels), dtype=np.uint8)
    shown = for_display(image)
    assert shown.shape == ((16, 16) if channels == 1 else (16, 16, 4))  # native; the page enlarges it
    np.testing.assert_array_equal(shown.reshape(16, 16, channels), image)
    assert len(gr.Gallery().postprocess([(shown, "seed 0")]).root) == 1


def test_other_channel_counts_and_bad_backgrounds_are_one_line_errors():
    """progan.images takes 1, 3 or 4 channels and a background of three integers 0..255; anything else is
    a ValueError naming it (not an index or broadcast error deep inside)."""
    from progan.images import to_pil

    for c in (2, 5):
        with pytest.raises(ValueError, match=rf"^images must have 1, 3 or 4 channels, got shape \(1, {c}, 2, 2\)$"):
            uint8_to_rgb(torch.zeros(1, c, 2, 2, dtype=torch.uint8))
        with pytest.raises(ValueError, match=rf"^images must have 1, 3 or 4 channels, got shape \(2, 2, {c}\)$"):
            to_pil(np.zeros((2, 2, c), np.uint8))
    rgba = torch.zeros(1, 4, 2, 2, dtype=torch.uint8)                    # fully transparent: the background shows
    for bad in ((0, 0, 256), (-1, 0, 0), (0, 0), (0, 0, 0, 0)):
        with pytest.raises(ValueError, match=r"^background must be three integers 0\.\.255, got "):
            uint8_to_rgb(rgba, background=bad)
    for good in ((0, 0, 0), (255, 255, 255), (7, 8, 9)):
        assert uint8_to_rgb(rgba, background=good)[0, :, 0, 0].tolist() == list(good)


def test_evaluate_cli_reports_the_background_whenever_either_side_is_rgba(tmp_path, monkeypatch, capsys):
    """An RGB generator scored against RGBA data: the data is composited onto --background, so the JSON
    records it (with both channel counts); the same generator against RGB data records no background."""
    import evaluate
    import progan.metrics.evaluation

    source = _rgba_folder(tmp_path / "src", count=4)
    for channels in (4, 3):
        data_prep.prepare(source, tmp_path / f"data{channels}", resolution=16, channels=channels, workers=1,
                          progress=False)
    torch.manual_seed(0)
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(tmp_path / "g")   # RGB
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    seen = []
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: seen.append(k.get("background")) or {"fid": 1.0})
    for channels in (4, 3):
        capsys.readouterr()
        assert evaluate.main(["--weights", str(tmp_path / "g"), "--data", str(tmp_path / f"data{channels}"),
                              "--num", "4", "--metrics", "fid", "--background", "0,128,255"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert seen[-1] == (0, 128, 255)
        assert (summary["image_channels"], summary["channels_real"]) == (3, channels)
        assert summary.get("background") == ([0, 128, 255] if channels == 4 else None)
