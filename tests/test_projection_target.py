"""The projection's target loader (``app.projection.target.load_target``) on inputs no other projection
test used: an SVG (``python -m app.project`` renders it as data_prep renders OpenMoji) and a picture smaller
than the model (upsampled, where data_prep would skip it).
"""
from __future__ import annotations

import io

import pytest
from PIL import Image

from app.projection.target import load_target


def test_an_svg_target_is_rendered_at_the_models_resolution_over_the_background():
    """``python -m app.project`` takes an SVG (``allow_svg``) as data_prep takes OpenMoji: rendered at the
    model's resolution, transparency over the background. A red left half is red on columns 0-3 of 8 and the
    background on 4-7; without ``allow_svg`` (the app's uploads) it is refused in one line."""
    pytest.importorskip("resvg_py")
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 2 2">'
           b'<rect x="0" y="0" width="1" height="2" fill="#ff0000"/></svg>')
    for background in ((255, 255, 255), (0, 0, 255)):
        pixels = load_target(svg, 8, background=background, allow_svg=True)
        assert pixels.shape == (8, 8, 3)
        assert (pixels[:, :4] == (255, 0, 0)).all() and (pixels[:, 4:] == background).all()
    with pytest.raises(ValueError, match="cannot use this image"):
        load_target(svg, 8)


def test_a_picture_smaller_than_the_model_is_upsampled_not_refused():
    """A 4x4 picture for a 16 px model (data_prep would skip it as too small; projection upsamples). A flat
    colour resamples to itself, every pixel; a left-red right-blue picture keeps red on the left 8 columns
    and blue on the right 8 (the Lanczos ringing near the edges stays far below the other colour)."""
    def png(image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    flat = load_target(png(Image.new("RGB", (4, 4), (40, 120, 200))), 16)
    assert flat.shape == (16, 16, 3) and (flat == (40, 120, 200)).all()
    split = Image.new("RGB", (4, 4), (255, 0, 0))
    split.paste((0, 0, 255), (2, 0, 4, 4))
    pixels = load_target(png(split), 16).astype(int)
    assert (pixels[:, :8, 0] > pixels[:, :8, 2]).all() and (pixels[:, 8:, 2] > pixels[:, 8:, 0]).all()
