"""The weights shipped in ``weights/`` load strictly, match their config.json and model card, and generate.

A broken export, a renamed key or a card that no longer describes its file fails here, before a
visitor opens the app (app/models.py serves these by default).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.models import BUNDLED
from app.sampling import generate_images
from families import load_generator


@pytest.mark.parametrize("label", list(BUNDLED))
def test_bundled_weights_load_and_generate(label):
    folder = BUNDLED[label]
    config = json.loads((folder / "config.json").read_text())
    generator = load_generator(str(folder), device="cpu", progress=False)
    assert generator.config.family == config["family"] == label.split("-")[0]
    assert generator.config.resolution == config["config"]["resolution"]
    summary = generator.pretrained_metadata["summary"]
    assert summary["images_seen"] > 0 and summary["images_seen"] == config["summary"]["images_seen"]
    assert f"{summary['kimg']:g}" in (folder / "README.md").read_text()  # the card describes this file
    r = generator.config.resolution
    images = generate_images(generator, [0, 1, 2, 3], psi=1.0, noise="fixed")
    assert images.shape == (4, r, r, 3) and images.dtype == np.uint8
    assert len({image.tobytes() for image in images}) == 4  # seeds give different images
    assert images.std() > 10  # not a flat colour: trained weights draw something


def test_bundled_stylegan_weights_keep_their_replicate_blur(monkeypatch):
    """weights/ predates ``blur_padding``: its config has no such key, so it loads as replicate and draws
    exactly what the pre-option blur (pad by the edge pixel, then the 3x3 kernel) draws."""
    import torch
    import torch.nn.functional as F

    from progan.layers import Blur

    folder = BUNDLED["stylegan_lite-openmoji"]
    assert "blur_padding" not in json.loads((folder / "config.json").read_text())["config"]
    generator = load_generator(str(folder), device="cpu", progress=False).eval()
    assert generator.config.blur_padding == "replicate"
    torch.manual_seed(0)
    z = torch.randn(4, generator.config.latent_dim)
    with torch.no_grad():
        now = generator(z, noise_mode="const", psi=0.7)

        def before(self, x):  # Blur.forward as it was when these weights were trained
            kernel = self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3)
            return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])

        monkeypatch.setattr(Blur, "forward", before)
        assert torch.equal(generator(z, noise_mode="const", psi=0.7), now)


def test_missing_bundled_weights_are_a_note_or_one_line_error(tmp_path, monkeypatch, capsys):
    """README: with no --weights the app serves the bundled weights that exist, first one the default; a
    missing one is a note naming it, and none at all is one line asking for --weights."""
    import app.models as models

    folders = {"first": tmp_path / "weights" / "first", "second": tmp_path / "weights" / "second"}
    monkeypatch.setattr(models, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(models, "BUNDLED", folders)
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")       # a folder without its model file is still missing
    with pytest.raises(FileNotFoundError) as info:
        models.launch_sources(None)
    message = str(info.value)
    assert "\n" not in message and "weights/first and weights/second are missing" in message
    assert "--weights" in message

    (folders["second"] / "model.safetensors").write_bytes(b"x")
    assert models.launch_sources(None) == {"second": str(folders["second"])}
    err = capsys.readouterr().err
    assert err == "note: bundled weights weights/first are missing; not offered\n"

    (folders["first"] / "model.safetensors").write_bytes(b"x")
    sources = models.launch_sources(None)
    assert list(sources) == ["first", "second"] and capsys.readouterr().err == ""   # the first is the default
    assert models.launch_sources(["elsewhere/run"]) == {"run": "elsewhere/run"}      # given weights: bundled unused
