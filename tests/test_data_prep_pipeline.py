"""How ``prepare`` drives its worker pool: the process count it asks for and the chunk size it sends."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import data_prep.pipeline as pipeline
from data_prep import prepare


@pytest.fixture
def seen(monkeypatch):
    """Records ``ordered_map``'s ``workers`` and ``chunk``, then runs it in this process (same results)."""
    calls = []
    real = pipeline.ordered_map

    def recording(fn, items, settings, *, workers, chunk):
        calls.append((workers, chunk))
        return real(fn, items, settings, workers=1, chunk=chunk)

    monkeypatch.setattr(pipeline, "ordered_map", recording)
    return calls


def _folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(folder / "a.png")
    return folder


@pytest.mark.parametrize("workers, used", [(0, 1), (1, 1), (3, 3)])
def test_workers_are_at_least_one_and_otherwise_as_asked(seen, tmp_path, workers, used):
    prepare(_folder(tmp_path), tmp_path / "out", resolution=8, workers=workers, progress=False)
    assert [w for w, _ in seen] == [used]


@pytest.mark.parametrize("resolution, channels, chunk", [
    (8, 3, 32),                                     # 4 MiB // 256 bytes = 16384 images: capped at 32
    (512, 4, (4 << 20) // (4 * 512 * 512 * 4 // 3)),  # 3: a chunk of ~4 MiB of pixels with its pyramid
])
def test_chunks_hold_about_4_mib_of_pixels_and_at_most_32_images(seen, tmp_path, resolution, channels, chunk):
    """Pixels per image with its pyramid: channels * r^2 * 4/3; a chunk is 4 MiB of them, at most 32 images."""
    prepare(_folder(tmp_path), tmp_path / "out", resolution=resolution, workers=1, progress=False, upscale=True,
            channels=channels, pyramid=False)
    assert seen == [(1, chunk)] and chunk == (32 if resolution == 8 else 3)
