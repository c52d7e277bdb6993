"""data_prep decoding: every kind of file a real collection holds, checked pixel by pixel.

Each test writes a tiny image of one kind into a temp folder, runs `prepare` with workers=1 (no
resampling: the image already has the target size unless the test is about resizing) and reads
the stored uint8 array back, so what is asserted is what train.py will see.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from data_prep import prepare
from data_prep.decode import decode
from data_prep.errors import SkipImage

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def build(tmp_path, files: dict[str, bytes], resolution: int, **options):
    """Write `files` into a folder, prepare it; return (images [N, H, W, 3], manifest)."""
    import json

    source = tmp_path / "src"
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    out = prepare(source, tmp_path / "out", resolution=resolution, workers=1, progress=False,
                  **options)
    manifest = json.loads((out / "manifest.json").read_text())
    images = np.load(out / f"images_{resolution}.npy").transpose(0, 2, 3, 1)
    return images, manifest


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=98, exif=exif.tobytes())


def corner_image(width: int, height: int) -> Image.Image:
    """Blue image with a red block in the stored top-left corner (JPEG-block aligned, 8 px)."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, 8, 8))
    return image


def is_red(pixel) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


@pytest.mark.parametrize("orientation, size, red_corner", [
    (1, (32, 16), "top_left"),
    (3, (32, 16), "bottom_right"),   # rotated 180
    (6, (16, 32), "top_right"),      # stored landscape, displayed portrait, rotated 90 cw
    (8, (16, 32), "bottom_left"),    # rotated 90 ccw
    (2, (32, 16), "top_right"),      # mirrored
])
def test_exif_orientation_moves_the_corner(orientation, size, red_corner):
    image = decode(with_orientation(corner_image(32, 16), orientation))
    assert image.size == size
    pixels = np.asarray(image)
    h, w = pixels.shape[:2]
    where = {"top_left": (2, 2), "top_right": (2, w - 3),
             "bottom_left": (h - 3, 2), "bottom_right": (h - 3, w - 3)}
    for corner, (y, x) in where.items():
        assert is_red(pixels[y, x]) == (corner == red_corner), (corner, pixels[y, x])


def test_exif_orientation_end_to_end(tmp_path):
    square = corner_image(16, 16)
    images, _ = build(tmp_path, {"a.jpg": with_orientation(square, 3)}, 16, pyramid=False)
    assert is_red(images[0, 13, 13]) and not is_red(images[0, 2, 2])


def test_rgba_and_la_composited_on_background(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (4, 0, 8, 8))         # fully transparent blue: must vanish
    rgba.putpixel((0, 0), (255, 0, 0, 128))           # half-transparent red over green
    la = Image.new("LA", (8, 8), (200, 0))
    images, manifest = build(tmp_path, {"a.png": encode(rgba, "PNG"), "b.png": encode(la, "PNG")},
                             8, background=GREEN, pyramid=False)
    assert manifest["counts"]["kept"] == 2
    a, b = images
    assert (a[:, 4:] == GREEN).all() and (a[1:, :4] == RED).all()
    assert abs(int(a[0, 0, 0]) - 128) <= 1 and abs(int(a[0, 0, 1]) - 127) <= 1 and a[0, 0, 2] == 0
    assert (b == GREEN).all()


def test_palette_gray_cmyk_bilevel_to_rgb(tmp_path):
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    transparent = Image.new("P", (8, 8), 0)
    transparent.putpalette([9, 9, 9] * 256)
    files = {
        "p.png": encode(palette, "PNG"),
        "pt.gif": encode(transparent, "GIF", transparency=0),
        "l.png": encode(Image.new("L", (8, 8), 77), "PNG"),
        "cmyk.tif": encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "TIFF"),
        "one.bmp": encode(Image.new("1", (8, 8), 1), "BMP"),
    }
    images, manifest = build(tmp_path, files, 8, pyramid=False)
    assert manifest["counts"]["kept"] == 5
    by_name = dict(zip(sorted(files), images))
    assert (by_name["p.png"] == (10, 20, 30)).all()
    assert (by_name["pt.gif"] == WHITE).all()        # palette transparency -> background
    assert (by_name["l.png"] == 77).all()
    assert (by_name["cmyk.tif"] == RED).all()
    assert (by_name["one.bmp"] == WHITE).all()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]] * 4, dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    images, _ = build(tmp_path, {"a.png": encode(image.resize((4, 4)), "PNG")}, 4, pyramid=False)
    assert images[0, 0, :, 0].tolist() == [0, 1, 128, 255]
    assert (images[0] == images[0, :, :, :1]).all()  # gray stays gray


def test_float_tiff_scale_is_read_from_its_maximum_inclusive_of_one(tmp_path):
    """Float ("F") TIFFs come as 0..1 or 0..255: a maximum of at most 1.0 means 0..1 (times 255), anything
    above means 0..255. Both sides of the boundary: exactly 1.0 is still 0..1 (its brightest pixel is
    white, not 1/255), and the next float32 above 1.0 is already 0..255."""
    above_one = float(np.nextafter(np.float32(1.0), np.float32(2.0)))
    rows = {  # name: (stored floats, expected uint8 by hand: round(v * 255) for 0..1, round(v) for 0..255)
        "max_one.tif": ([0.0, 0.2, 0.6, 1.0], [0, 51, 153, 255]),
        "below_one.tif": ([0.0, 0.2, 0.6, 0.8], [0, 51, 153, 204]),
        "above_one.tif": ([0.0, 0.4, 1.0, above_one], [0, 0, 1, 1]),
        "wide.tif": ([0.0, 2.0, 128.0, 255.0], [0, 2, 128, 255]),
    }
    files = {}
    for name, (values, _) in rows.items():
        image = Image.fromarray(np.array([values] * 4, dtype=np.float32))
        assert image.mode == "F"
        files[name] = encode(image, "TIFF")
    images, manifest = build(tmp_path, files, 4, pyramid=False)
    assert manifest["counts"]["kept"] == 4
    for name, image in zip(sorted(files), images):
        assert image[0, :, 0].tolist() == rows[name][1], name
        assert (image == image[:, :, :1]).all()  # gray stays gray


def test_animated_gif_keeps_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    images, _ = build(tmp_path, {"anim.gif": data}, 8, pyramid=False)
    assert (images[0] == RED).all()


def png_claiming_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height: a decompression bomb's signature."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    good = encode(Image.new("RGB", (16, 16), RED), "PNG")
    jpeg = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    files = {
        "good.png": good,
        "empty.jpg": b"",
        "html.jpg": b"<html><body>404 not found</body></html>",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": good[:-30],
        "small.png": encode(Image.new("RGB", (8, 16), RED), "PNG"),
        "bomb.png": png_claiming_size(20000, 20000),
    }
    source = tmp_path / "src"
    source.mkdir()
    (source / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    images, manifest = build(tmp_path, files, 16, pyramid=False)
    reasons = {entry["file"]: entry["reason"] for entry in manifest["skipped"]}
    assert reasons == {"empty.jpg": "empty", "html.jpg": "not_image",
                       "truncated.jpg": "corrupt", "truncated.png": "corrupt",
                       "small.png": "too_small", "bomb.png": "too_large",
                       "dangling.png": "unreadable"}
    assert manifest["counts"]["kept"] == 1 and (images[0] == RED).all()
    assert manifest["counts"]["skipped_by_reason"]["corrupt"] == 2
    assert all(entry["detail"] for entry in manifest["skipped"])


def test_upscale_keeps_small_images(tmp_path):
    small = encode(Image.new("RGB", (6, 8), RED), "PNG")
    images, manifest = build(tmp_path, {"small.png": small}, 16, upscale=True, pyramid=False)
    assert manifest["counts"]["kept"] == 1 and images.shape == (1, 16, 16, 3)
    assert (np.abs(images[0].astype(int) - RED) <= 1).all()


def test_max_pixels_limit(tmp_path):
    with pytest.raises(SkipImage) as info:
        decode(encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=399)
    assert info.value.reason == "too_large"
    assert decode(encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=400).size == (20, 20)  # exactly the cap


@pytest.mark.parametrize("size", [(40, 20), (20, 40)])
@pytest.mark.parametrize("resolution", [20, 8])
def test_center_crop_takes_the_central_square(size, resolution):
    """A wide and a tall image whose central square is red and margins blue: crop="center" keeps only red,
    exactly when no resampling is needed (20 px), within Lanczos ringing at the square's edge otherwise."""
    from data_prep.resize import square

    width, height = size
    side = min(size)
    left, top = (width - side) // 2, (height - side) // 2
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (left, top, left + side, top + side))
    out = square(image, resolution, crop="center").astype(int)                     # [R, R, 3]
    assert out.shape == (resolution, resolution, 3)
    tolerance = 0 if resolution == side else 20                                    # blue ringing in from outside
    assert (np.abs(out - RED) <= tolerance).all(), np.abs(out - RED).max()


def test_center_crop_and_pad(tmp_path):
    wide = Image.new("RGB", (24, 8), BLUE)
    wide.paste(RED, (8, 0, 16, 8))                   # the centre third is red
    data = {"wide.png": encode(wide, "PNG")}
    cropped, _ = build(tmp_path / "c", data, 8, crop="center", pyramid=False)
    assert (cropped[0] == RED).all()
    padded, _ = build(tmp_path / "p", data, 8, crop="pad", background=GREEN, pyramid=False)
    # 24x8 letterboxed into 24x24 (8 green rows above and below), then resized 3:1 to 8x8;
    # the tolerance covers Lanczos ringing from the content edge.
    assert (np.abs(padded[0, [0, -1]].astype(int) - GREEN) <= 6).all()
    assert is_red(padded[0, 4, 4])


@pytest.mark.parametrize("crop, drafted", [("pad", (100, 25)), ("center", (200, 50))])
def test_jpeg_draft_keeps_twice_the_resolution_on_the_side_the_crop_keeps(monkeypatch, crop, drafted):
    """A large JPEG is decoded at 1/2, 1/4 or 1/8 (libjpeg's draft), the smallest that keeps 2R pixels on
    the side that becomes the square's side: the short side for crop="center", the long one for "pad".
    An 800x200 JPEG at R = 16 (2R = 32): "pad" drafts at 1/8 (100x25); "center" at 1/4 (200x50), since
    1/8 would leave its short side at 25 < 32. The spy records the size ``prepare``'s decode drafted."""
    import data_prep.decode as decode_module
    from data_prep.items import Item
    from data_prep.pipeline import Settings, load_square

    request_draft, sizes = decode_module.request_draft, []

    def spy(image, min_square, **options):
        request_draft(image, min_square, **options)
        sizes.append(image.size)

    monkeypatch.setattr(decode_module, "request_draft", spy)
    wide = encode(Image.new("RGB", (800, 200), BLUE), "JPEG", quality=90)
    top = load_square(Item("wide.jpg", data=wide), Settings(16, crop=crop))
    assert sizes == [drafted] and top.shape == (16, 16, 3)


def test_a_header_that_crashes_its_plugin_is_corrupt_not_a_crash(monkeypatch):
    """A damaged header can raise anything inside a PIL plugin (struct.error, SyntaxError, ...): decode
    turns it into SkipImage("corrupt") naming the error, so one bad file costs one image."""
    def crash(*args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(Image, "open", crash)
    with pytest.raises(SkipImage) as info:
        decode(b"\x89PNG\r\n\x1a\n damaged")
    assert info.value.reason == "corrupt" and "unpack requires" in info.value.detail


@pytest.mark.parametrize("broken", ["getexif", "exif_transpose"])
def test_malformed_exif_keeps_the_image_as_stored(monkeypatch, broken):
    """An EXIF block PIL cannot parse, or an orientation it cannot apply, must not cost the image: it is
    kept in its stored orientation (red block still top-left, stored size)."""
    from PIL import ImageOps

    def crash(*args, **kwargs):
        raise struct.error("bad TIFF IFD in the EXIF block")

    if broken == "getexif":
        monkeypatch.setattr(Image.Image, "getexif", crash)
    else:
        monkeypatch.setattr(ImageOps, "exif_transpose", crash)
    image = decode(with_orientation(corner_image(32, 16), 6))     # 6 would rotate to 16x32
    assert image.size == (32, 16)
    pixels = np.asarray(image)
    assert is_red(pixels[2, 2]) and not is_red(pixels[2, 29]) and not is_red(pixels[13, 2])


def test_sixteen_bit_and_float_images_into_rgba_are_scaled_and_opaque():
    """channels=4: a 16-bit scan is scaled v * 255 / 65535 (PIL alone would clip it to white) and a float
    image read as 0..1, each grey in R, G and B with alpha 255 (no alpha in the file)."""
    sixteen = Image.fromarray(np.array([[0, 257, 32896, 65535]] * 4, dtype=np.uint16))
    floats = Image.fromarray(np.array([[0.0, 0.2, 0.6, 1.0]] * 4, dtype=np.float32))
    for image, fmt, expected in ((sixteen, "PNG", [0, 1, 128, 255]), (floats, "TIFF", [0, 51, 153, 255])):
        rgba = np.asarray(decode(encode(image, fmt), channels=4))
        assert rgba.shape == (4, 4, 4)
        for c in range(3):
            assert rgba[0, :, c].tolist() == expected, (fmt, c)
        assert (rgba[..., 3] == 255).all()


def test_pad_fills_gray_with_the_backgrounds_luma_and_rgba_with_transparency():
    """crop="pad" beyond RGB: an 8x4 image letterboxed to 8x8 (no resampling) gets two rows above and two
    below of the background's luma for L (green: round(587 * 255 / 1000) = 150, PIL's 'L') and of fully
    transparent black for RGBA, whatever the background; the content rows are untouched."""
    from data_prep.resize import square

    gray = square(Image.new("L", (8, 4), 100), 8, crop="pad", background=GREEN)
    assert gray.shape == (8, 8, 1)
    assert (gray[[0, 1, 6, 7]] == 150).all() and (gray[2:6] == 100).all()
    rgba = square(Image.new("RGBA", (8, 4), (200, 10, 30, 255)), 8, crop="pad", background=GREEN)
    assert rgba.shape == (8, 8, 4)
    assert (rgba[[0, 1, 6, 7]] == 0).all() and (rgba[2:6] == (200, 10, 30, 255)).all()


def test_rgba_keeps_straight_colour_wherever_alpha_is_above_zero():
    """channels=4 clears the colour of fully transparent pixels only: a pixel of alpha 1, 128 or 254 keeps
    its stored (straight) colour exactly, and only the alpha-0 pixel becomes (0, 0, 0, 0)."""
    pixels = np.array([[(200, 100, 50, 0), (200, 100, 50, 1), (10, 220, 30, 128), (90, 80, 70, 254),
                        (1, 2, 3, 255)]], dtype=np.uint8)
    rgba = np.asarray(decode(encode(Image.fromarray(pixels, "RGBA"), "PNG"), channels=4))
    assert rgba.tolist() == [[[0, 0, 0, 0], [200, 100, 50, 1], [10, 220, 30, 128], [90, 80, 70, 254],
                              [1, 2, 3, 255]]]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sixteen_bit_rounds_to_the_nearest_eight_bit_value(channels):
    """v * 255 / 65535 rounded to nearest, not the high byte (v >> 8): values whose fraction is above
    one half (200 -> 0.78, 511 -> 1.99) tell the two apart, unlike 257 or 32896 (exact multiples)."""
    values = [200, 511, 32767, 65000]
    expected = [int(v * 255 / 65535 + 0.5) for v in values]               # 1, 2, 127, 253
    assert expected != [v >> 8 for v in values]
    image = Image.fromarray(np.array([values] * 4, dtype=np.uint16))
    out = np.asarray(decode(encode(image, "PNG"), channels=channels)).reshape(4, 4, channels)
    for c in range(min(channels, 3)):
        assert out[0, :, c].tolist() == expected, c


@pytest.mark.parametrize("size", [(7, 4), (4, 7)])
def test_center_crop_of_an_odd_margin_starts_at_its_floor_half(size):
    """A 7x4 (and 4x7) image whose columns (rows) are numbered 0..6 into a 4 px square: no resampling, so the
    kept pixels are exactly lines 1-4 (the odd margin of 3 splits 1 before, 2 after), red and blue distinct."""
    from data_prep.resize import square

    width, height = size
    line = np.arange(max(size), dtype=np.uint8) * 30                               # 0, 30, ..., 180
    pixels = np.zeros((height, width, 3), np.uint8)
    if width > height:
        pixels[..., 0] = line[None, :]
    else:
        pixels[..., 0] = line[:, None]
    pixels[..., 2] = 200                                                           # channels kept apart
    out = square(Image.fromarray(pixels), 4, crop="center")
    kept = out[0, :, 0] if width > height else out[:, 0, 0]
    assert kept.tolist() == [30, 60, 90, 120]
    assert (out[..., 2] == 200).all() and (out[..., 1] == 0).all()


@pytest.mark.parametrize("size, resolution", [((12, 9), 8), ((5, 7), 8)])    # shrink; enlarge (upscale)
def test_resize_is_lanczos_of_the_central_square(size, resolution):
    """Resampling is Lanczos (Pillow's LANCZOS on the central square's box, the filter the module names),
    not bilinear or bicubic: a random image, so every filter gives other bytes."""
    from data_prep.resize import square

    width, height = size
    pixels = np.random.default_rng(5).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    side = min(size)
    left, top = (width - side) // 2, (height - side) // 2
    expected = np.asarray(image.resize((resolution, resolution), Image.LANCZOS, box=(left, top, left + side, top + side)))
    np.testing.assert_array_equal(square(image, resolution, crop="center", upscale=True), expected)
    bilinear = np.asarray(image.resize((resolution, resolution), Image.BILINEAR, box=(left, top, left + side, top + side)))
    assert np.abs(expected.astype(int) - bilinear).max() > 8                        # the filters do differ here
