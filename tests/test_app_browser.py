"""The app in a real headless browser (Debian's chromium via Playwright): open, generate, see images.

Its screenshot goes to the test's temp dir: running the tests never changes a tracked file. The
picture in the docs comes from ``scripts/app_screenshot.py``. Skips (with the reason) when
``/usr/bin/chromium`` or Playwright is missing; ``.ci/run`` installs both.
"""
from __future__ import annotations

import contextlib
import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from families import FAMILIES

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "app.png"


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> Path:
    weights = tmp_path_factory.mktemp("weights") / "stylegan_lite-small-32"
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)  # randomly initialised: the screenshot shows the UI, not a trained model
    family.generator_cls(family.presets["small-32"]).save_pretrained(weights)
    return weights


@pytest.fixture(scope="module")
def page_url(app_launcher, small_weights):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    return app_launcher("--weights", str(small_weights))


def test_generate_in_browser(page_url, small_weights, tmp_path):
    docs_before = DOCS_SCREENSHOT.read_bytes() if DOCS_SCREENSHOT.exists() else None
    from playwright.sync_api import sync_playwright

    from app.sampling import generate_images
    from families import load_generator

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            # not "networkidle": Gradio keeps a heartbeat connection open, and offline font requests hang
            page.goto(page_url, wait_until="domcontentloaded", timeout=60_000)
            page.locator("#generate").wait_for(state="visible", timeout=60_000)
            # a first-time visitor sees samples without clicking: seeds 0-15 at the default settings
            page.wait_for_function("() => [...document.querySelectorAll('#gallery img')].filter("
                                   "img => img.complete && img.naturalWidth).length >= 16", timeout=60_000)
            assert "16 images" in page.locator("#sample-status").inner_text()
            first = page.locator("#gallery img").first
            expected = generate_images(load_generator(small_weights, progress=False), [0], psi=0.7, noise="random")[0]
            shown = np.asarray(Image.open(io.BytesIO(_fetch(page, first.get_attribute("src")))).convert("RGB"))
            assert np.abs(shown.astype(int) - expected).max() <= 1                # seed 0, as Generate draws it
            # the server sends the 32 px model's native pixels; the page enlarges them, nearest-neighbour
            natural, width, rendering = first.evaluate(
                "img => [img.naturalWidth, img.getBoundingClientRect().width, getComputedStyle(img).imageRendering]")
            assert natural == 32 and width >= 3 * 32 and rendering == "pixelated", (natural, width, rendering)
            # and Generate replaces them
            page.get_by_label("Seeds", exact=False).first.fill("5-8")
            page.locator("#generate").click()
            page.locator("#sample-status").filter(has_text="seeds 5, 6, 7, 8").wait_for(timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('#gallery img').length === 4", timeout=60_000)
            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert (DOCS_SCREENSHOT.read_bytes() if DOCS_SCREENSHOT.exists() else None) == docs_before


# --- The "Your image" tab: upload -> streamed projection -> the latent in the other tabs -----------------------

BUNDLED = Path(__file__).resolve().parents[1] / "weights" / "stylegan_lite-openmoji"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_WATCH = """() => {
  // every value the status and the picture take while the projection streams (a poll could miss some)
  window.__seen = {status: [], src: []};
  const record = () => {
    const status = document.querySelector('#project-status')?.innerText.trim() || '';
    const img = document.querySelector('#projection img');
    const src = img ? img.src : '';
    const seen = window.__seen;
    if (status && status !== seen.status.at(-1)) seen.status.push(status);
    if (src && src !== seen.src.at(-1)) seen.src.push(src);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                       characterData: true});
}"""


@pytest.fixture(scope="module")
def bundled_url(app_launcher):
    """The app on the bundled 64 px StyleGAN-lite: a projection only means something with trained weights."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not (BUNDLED / "model.safetensors").exists():
        pytest.skip(f"{BUNDLED} is missing")
    return app_launcher("--weights", str(BUNDLED))


@contextlib.contextmanager
def _page(url: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(120_000)  # the VM's cores are shared with training runs
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#generate").wait_for(state="visible")
            yield page
        finally:
            browser.close()


def _emoji_png(path: Path) -> Path:
    """A 120x90 smiley (not square: the app crops the centre square like data_prep)."""
    image = Image.new("RGB", (120, 90), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 5, 100, 85), fill=(250, 200, 30), outline=(40, 40, 40), width=4)
    draw.ellipse((42, 28, 52, 42), fill=(40, 40, 40))
    draw.ellipse((68, 28, 78, 42), fill=(40, 40, 40))
    draw.arc((40, 40, 80, 72), 20, 160, fill=(40, 40, 40), width=4)
    image.save(path)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _fetch(page, url: str) -> bytes:
    response = page.request.get(url)
    assert response.ok, (url, response.status)
    return response.body()


def _image(page, selector: str) -> Image.Image:
    """The picture a component shows, as the browser got it (its ``src``), decoded by Pillow."""
    img = page.locator(f"{selector} img").first
    img.wait_for(state="visible")
    page.wait_for_function(f"() => document.querySelector('{selector} img').complete")
    return Image.open(io.BytesIO(_fetch(page, img.get_attribute("src"))))


def _shown_scale(page, selector: str) -> float:
    """How much larger than its pixels the page draws a component's picture; checks it is drawn pixelated."""
    scale, rendering = page.locator(f"{selector} img").first.evaluate(
        "img => [img.getBoundingClientRect().width / img.naturalWidth, getComputedStyle(img).imageRendering]")
    assert rendering == "pixelated", rendering
    return scale


def _set_slider(page, label: str, value: int) -> None:
    box = page.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")


def _project(page, upload: Path, steps: int) -> None:
    page.get_by_role("tab", name="Your image").click()
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    _set_slider(page, "Steps", steps)
    page.locator("#project").click()


def _wait_for(page, locator) -> None:
    """Wait for ``locator``; if the page shows an error instead, fail at once with its text."""
    error = page.get_by_test_id("toast-body")
    locator.or_(error).first.wait_for()
    if error.count():
        pytest.fail(f"the page showed an error: {error.first.inner_text()!r}")


def _error_toast(page) -> str:
    """The one-line message of the error the page shows (then closed, so the next one is not confused with it)."""
    toast = page.get_by_test_id("toast-body").first
    toast.wait_for(state="visible")
    messages = [m.strip() for m in toast.get_by_test_id("toast-text").all_text_contents()]
    for close in page.get_by_test_id("toast-close").all():
        close.click()
    page.get_by_test_id("toast-body").first.wait_for(state="detached")
    assert len(messages) == 1, messages
    return messages[0]


def test_your_image_projects_streams_and_feeds_the_other_tabs(bundled_url, tmp_path):
    from app.projection.target import load_target
    from app.projection import Projection

    upload = _emoji_png(tmp_path / "my-emoji.png")
    target = load_target(upload.read_bytes(), 64)                             # [64, 64, 3] as the model sees it
    steps = 40
    with _page(bundled_url) as page:
        page.evaluate(_WATCH)
        _project(page, upload, steps)
        status = page.locator("#project-status")
        _wait_for(page, status.filter(has_text=f"projected into w in {steps} steps"))
        seen = page.evaluate("window.__seen")
        # streamed: intermediate steps were shown before the result, with their own pictures
        steps_shown = [s for s in seen["status"] if re.match(rf"step \d+/{steps}, loss", s)]
        assert steps_shown, seen["status"]
        assert seen["status"].index(steps_shown[0]) < len(seen["status"]) - 1
        assert len(set(seen["src"])) >= 2, seen["src"]
        first_loss, final_loss = (float(re.search(r"loss (\d+\.\d+)", text)[1])
                                  for text in (steps_shown[0], status.inner_text()))
        assert final_loss < first_loss                                         # it converged, not just ran

        # the result: target | 2 px gap | reconstruction at native size, enlarged by the page
        picture = _image(page, "#projection")
        assert picture.size == (2 * 64 + 2, 64)
        assert _shown_scale(page, "#projection") >= 2
        pixels = np.asarray(picture.convert("RGB"))
        assert np.array_equal(pixels[:, :64], target)                          # the upload, cropped like data_prep
        reconstruction = pixels[:, 66:]                                        # [64, 64, 3]
        assert reconstruction.std() > 20 and (reconstruction < 250).any()     # an image, not a blank
        latent = tmp_path / "latent.safetensors"
        latent.write_bytes(_fetch(page, page.locator("#latent a").first.get_attribute("href")))
        projection = Projection.load(latent)
        assert (projection.family, projection.space, tuple(projection.latent.shape)) == ("stylegan_lite", "w", (1, 128))
        assert [tuple(n.shape[-2:]) for n in projection.noise][-1] == (64, 64)

        # style mixing with "image" as a column: its top-row cell is exactly the reconstruction
        page.get_by_role("tab", name="Style mixing").click()
        page.locator("#mix-cols textarea").fill("image")
        page.locator("#mix-rows textarea").fill("10")
        page.locator("#mix").click()
        _wait_for(page, page.locator("#mix-status").filter(has_text="columns (source A): image"))
        shown = _image(page, "#mix-image")
        figure = Image.open(io.BytesIO(_fetch(page, page.locator("#mix-file a").first.get_attribute("href"))))
        assert shown.size == figure.size == (2 * 64, 2 * 64)                   # native, shown enlarged by the page
        assert _shown_scale(page, "#mix-image") >= 2
        cells = np.asarray(figure.convert("RGB"), dtype=int)
        assert np.abs(cells[:64, 64:] - reconstruction).max() <= 1            # batch size may move a level
        assert np.abs(cells[64:, 64:] - reconstruction).mean() > 1            # B's coarse styles changed the cell

        # interpolation from the image to seed 1 (lerp in w): the walk starts at the reconstruction
        page.get_by_role("tab", name="Interpolation").click()
        page.locator("#interpolate-seeds textarea").fill("image,1")
        page.locator("#interpolate-method").get_by_label("lerp", exact=True).check()
        page.locator("#interpolate-space").get_by_label("w", exact=True).check()
        _set_slider(page, "Frames", 6)
        page.locator("#interpolate").click()
        _wait_for(page, page.locator("#interpolate-status").filter(has_text="6 frames through seeds image, 1"))
        gif = _image(page, "#interpolate-gif")
        assert gif.size == (256, 256) and gif.n_frames == 6
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=int)[::4, ::4])
        start_error = np.abs(frames[0] - reconstruction).mean()               # GIF palettes shift colours a little
        assert start_error < 3, start_error
        assert np.abs(frames[-1] - reconstruction).mean() > start_error + 10  # and it walks somewhere else


def test_your_image_bad_uploads_give_one_line_errors(bundled_url, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"these are my notes, not a picture\n" * 10)              # a .txt renamed .png
    huge = tmp_path / "huge.png"                                               # 8000 x 8000 in its header: 64 Mpx
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    with _page(bundled_url) as page:
        _project(page, fake, 10)
        message = _error_toast(page)
        assert message.startswith("notes.png: cannot use this image (not_image") and "\n" not in message, message
        page.locator("#upload button[aria-label='Clear']").first.click()
        _project(page, huge, 10)
        message = _error_toast(page)
        assert message == "huge.png: cannot use this image (too_large: 8000x8000 exceeds max_pixels=40000000)", message
        # the server keeps serving: the sampling tab still draws the 64 px model's images
        page.get_by_role("tab", name="Sampling").click()
        page.locator("#generate").click()
        page.wait_for_function("() => document.querySelectorAll('#gallery img').length >= 16")
        width = page.wait_for_function("() => { const img = document.querySelector('#gallery img'); "
                                       "return img.complete && img.naturalWidth; }").json_value()
        assert width == 64                                                     # native; the page enlarges it
