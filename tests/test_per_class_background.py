"""``evaluate.py --per-class --background``: RGBA classes composited onto the colour asked for (split from
test_per_class.py, which holds the per-class helpers this file reuses)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from families import FAMILIES
from test_per_class import CLASSES, _evaluate_cli_per_class_on


def _composite_by_hand(images: torch.Tensor, background: tuple[int, int, int]) -> torch.Tensor:
    """Straight-alpha RGBA uint8 [N, 4, H, W] over an opaque colour, rounded to nearest (float64)."""
    rgb, alpha = images[:, :3].double(), images[:, 3:].double()
    colour = torch.tensor(background, dtype=torch.float64).view(1, 3, 1, 1)
    return torch.round((alpha * rgb + (255 - alpha) * colour) / 255).to(torch.uint8)


def test_evaluate_cli_per_class_composites_rgba_onto_its_background(tmp_path, monkeypatch):
    """``--background 0,128,255 --per-class`` on a conditional RGBA generator and RGBA data (alpha 0..255 at
    random): each class's FID/KID are those of its samples and its reals composited onto that colour by
    hand, not onto the default white; the JSON records the colour."""
    import data_prep
    from metric_utils import StandInFeatures
    from progan.metrics.features import compute_metrics, images_to_uint8, latents_for_indices

    rng = np.random.default_rng(0)
    for name in CLASSES:
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA").save(
                tmp_path / "src" / name / f"{i}.png")
    data = data_prep.prepare(tmp_path / "src", tmp_path / "data", resolution=16, labels="folders", channels=4,
                             progress=False, workers=1)
    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=CLASSES, image_channels=4)
    generator = FAMILIES["progan"].generator_cls(config).eval()
    generator.save_pretrained(tmp_path / "g")
    summary = _evaluate_cli_per_class_on(tmp_path, monkeypatch, data, "--num", "6", "--metrics", "fid,kid",
                                         "--background", "0,128,255")
    assert summary["background"] == [0, 128, 255]
    dataset, network = data_prep.open_dataset(data, 16), StandInFeatures()
    z = latents_for_indices(range(6), config.latent_dim, seed=0)
    for label, name in enumerate(CLASSES):
        reals = torch.stack([dataset[i] for i in range(len(dataset)) if dataset.labels[i] == label])
        with torch.no_grad():
            fakes = images_to_uint8(generator(z, labels=torch.full((6,), label)))
        assert reals.shape[1] == fakes.shape[1] == 4 and 0 < int(reals[:, 3].float().mean()) < 255

        def by_hand(background):
            return compute_metrics(network(_composite_by_hand(reals, background)),
                                   network(_composite_by_hand(fakes, background)), metrics=("fid", "kid"),
                                   seed=0, kid_subset_size=5)

        expected, white = by_hand((0, 128, 255)), by_hand((255, 255, 255))
        assert summary["per_class"][name]["fid"] == pytest.approx(expected["fid"], rel=1e-4), name
        assert summary["per_class"][name]["kid"] == pytest.approx(expected["kid"], rel=1e-4, abs=1e-7), name
        assert summary["per_class"][name]["fid"] != pytest.approx(white["fid"], rel=1e-3), name
