"""Inception input preprocessing (progan/metrics/inception.py) against an independent reference.

The published preprocessing of the FID network (TF ``inception-2015-12-05``, as NVIDIA's
``inception-2015-12-05.pt`` emulates it): uint8 -> float, TF1 ``resize_bilinear`` to 299x299 with
``align_corners=False`` and no half-pixel centres (source = dest * in/out, clamped at the border),
then ``(x - 128) / 128``. The reference below is written from that description in NumPy float64,
with no torch sampling code. The fast test captures what reaches the network; the slow one compares
the real network's features of a fixed input with the network applied to the reference input.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from metric_utils import needs_inception
from progan.metrics.inception import INPUT_SIZE, InceptionFeatures, load_feature_network


def _tf_resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """TF1 resize_bilinear(align_corners=False, half_pixel_centers=False) of [C, H, W] float64."""
    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.arange(size) * (n_in / size)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, src - low
    y0, y1, fy = axis(image.shape[1])
    x0, x1, fx = axis(image.shape[2])
    top = image[:, y0][:, :, x0] * (1 - fx) + image[:, y0][:, :, x1] * fx
    bottom = image[:, y1][:, :, x0] * (1 - fx) + image[:, y1][:, :, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def reference_input(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 3, H, W] -> the network's float input [N, 3, 299, 299], in float64."""
    x = images.astype(np.float64)
    if x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
        x = np.stack([_tf_resize_bilinear(image, INPUT_SIZE) for image in x])
    return (x - 128.0) / 128.0


class _Capture(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # InceptionFeatures reads the device from a parameter
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return torch.zeros(x.shape[0], 2048)


def _fixed_images(size: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(size).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


@pytest.mark.parametrize("size", [16, 37, 64, INPUT_SIZE])
def test_network_input_matches_published_preprocessing(size):
    images = _fixed_images(size)
    capture = _Capture()
    InceptionFeatures(capture, sha256="test")(torch.from_numpy(images))
    (seen,) = capture.inputs
    expected = reference_input(images)
    assert seen.dtype == torch.float32 and tuple(seen.shape) == (2, 3, INPUT_SIZE, INPUT_SIZE)
    np.testing.assert_allclose(seen.double().numpy(), expected, atol=2e-5, rtol=0)
    assert seen.min() >= -1.0 and seen.max() <= 127 / 128


def test_range_endpoints():
    capture = _Capture()
    levels = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    InceptionFeatures(capture, sha256="test")(levels.expand(1, 3, 8, 8))
    values = capture.inputs[0][0, :, 100, 100].tolist()
    assert values == [-1.0, 0.0, 127 / 128]  # 0 -> -1, 128 -> 0, 255 -> 127/128


def test_grey_images_are_repeated_to_rgb():
    grey = torch.from_numpy(_fixed_images(20, n=1)[:, :1])  # [1, 1, 20, 20]
    capture = _Capture()
    InceptionFeatures(capture, sha256="test")(grey)
    expected = reference_input(grey.repeat(1, 3, 1, 1).numpy())
    np.testing.assert_allclose(capture.inputs[0].double().numpy(), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("shape", [(1, 4, 8, 8), (1, 2, 8, 8), (3, 8, 8)])
def test_images_that_are_not_grey_or_rgb_batches_are_refused_before_the_network(shape):
    """The fast twin of tests/test_inception.py's refusal on the real network: the wrapper takes [N, 1, H, W]
    (grey, repeated) or [N, 3, H, W] only (its docstring); an RGBA or 2-channel batch or an unbatched image
    is a one-line ValueError naming the shape, and the network is never called with it."""
    capture = _Capture()
    with pytest.raises(ValueError, match=r"^expected images \[N, 3, H, W\], got shape " + re.escape(str(shape)) + "$"):
        InceptionFeatures(capture, sha256="test")(torch.zeros(shape, dtype=torch.uint8))
    assert capture.inputs == []


@pytest.mark.slow
@needs_inception
def test_real_features_of_a_fixed_input_match_the_reference_pipeline():
    network = load_feature_network()
    images = _fixed_images(32)
    ours = network(torch.from_numpy(images))
    reference = network.network(torch.from_numpy(reference_input(images)).float()).float()
    torch.testing.assert_close(ours, reference, rtol=1e-3, atol=1e-3)
    # and the preprocessing matters: x/255 (a plausible slip) moves the features far
    wrong = network.network(torch.from_numpy((reference_input(images) * 128 + 128) / 255).float())
    assert (wrong - reference).abs().max() > 100 * (ours - reference).abs().max()


def test_the_networks_sha256_keys_the_real_statistics_cache(tmp_path):
    """The wrapper carries the file's sha256 (``load_feature_network`` passes it): real statistics are cached
    under it, read back for the same sha256 (the network is not run again) and not for another network's."""
    from progan.metrics.features import real_statistics

    images = [torch.from_numpy(image) for image in _fixed_images(8, n=3)]
    options = {"dataset_key": "three", "cache_dir": tmp_path, "batch_size": 3}
    first = _Capture()
    real_statistics(images, InceptionFeatures(first, sha256="a" * 64), **options)
    assert len(first.inputs) == 1 and len(list(tmp_path.iterdir())) == 1
    again = _Capture()
    real_statistics(images, InceptionFeatures(again, sha256="a" * 64), **options)
    assert again.inputs == []                                                 # read from the cache
    other = _Capture()
    real_statistics(images, InceptionFeatures(other, sha256="b" * 64), **options)
    assert len(other.inputs) == 1 and len(list(tmp_path.iterdir())) == 2      # its own entry
