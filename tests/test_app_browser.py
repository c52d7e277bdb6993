"""The app in a real headless browser (Debian's chromium via Playwright): open, generate, see images.

Its screenshot goes to the test's temp dir: running the tests never changes a tracked file. The
picture in the docs comes from ``scripts/app_screenshot.py``. Skips (with the reason) when
``/usr/bin/chromium`` or Playwright is missing; ``.ci/run`` installs both.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from families import FAMILIES

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "app.png"


@pytest.fixture(scope="module")
def page_url(app_launcher, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    weights = tmp_path_factory.mktemp("weights") / "stylegan_lite-small-32"
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)  # randomly initialised: the screenshot shows the UI, not a trained model
    family.generator_cls(family.presets["small-32"]).save_pretrained(weights)
    return app_launcher("--weights", str(weights))


def test_generate_in_browser(page_url, tmp_path):
    docs_before = DOCS_SCREENSHOT.read_bytes() if DOCS_SCREENSHOT.exists() else None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            # not "networkidle": Gradio keeps a heartbeat connection open, and offline font requests hang
            page.goto(page_url, wait_until="domcontentloaded", timeout=60_000)
            page.locator("#generate").wait_for(state="visible", timeout=60_000)
            page.get_by_label("Seeds", exact=False).first.fill("0-15")
            page.locator("#generate").click()
            images = page.locator("#gallery img")
            images.first.wait_for(state="visible", timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('#gallery img').length >= 16", timeout=60_000)
            assert images.count() >= 16
            # the 32 px model's images are shown enlarged 8x (nearest-neighbour), not at native size
            assert page.locator("#gallery img").first.evaluate("img => img.complete && img.naturalWidth") == 256
            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert (DOCS_SCREENSHOT.read_bytes() if DOCS_SCREENSHOT.exists() else None) == docs_before
