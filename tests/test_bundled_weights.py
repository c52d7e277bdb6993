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
