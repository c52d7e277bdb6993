"""data_prep's parallel path keeps the source order: with several workers every chunk of results,
the last ones drained from the window included, is written where one worker would write it."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from data_prep import prepare

COUNT = 3 * 32 + 5  # 4 chunks of (at most) 32 at resolution 4: more than one left in the window at the end


def colour(i: int) -> tuple[int, int, int]:
    """Distinct for every i < COUNT (the red channel alone is i)."""
    return (i, 255 - i, (7 * i) % 256)


def test_several_workers_store_every_chunk_in_sorted_source_order(tmp_path):
    source = tmp_path / "flat"
    source.mkdir()
    # written in reverse so the folder's listing order is not already the answer
    for i in reversed(range(COUNT)):
        Image.new("RGB", (4, 4), colour(i)).save(source / f"img{i:03d}.png")
    one = prepare(source, tmp_path / "one", resolution=4, workers=1, progress=False)
    two = prepare(source, tmp_path / "two", resolution=4, workers=2, progress=False)
    expected_names = [f"img{i:03d}.png" for i in range(COUNT)]
    for out in (one, two):
        assert json.loads((out / "names.json").read_text()) == expected_names
        stored = np.load(out / "images_4.npy")
        assert stored.shape == (COUNT, 3, 4, 4)
        for i in range(COUNT):  # a flat colour resizes to itself: image i is colour(i) in every pixel
            assert (stored[i].reshape(3, -1) == np.array(colour(i))[:, None]).all(), (out.name, i)
