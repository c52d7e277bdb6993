"""Regenerate docs/app.png: the app serving the bundled weights, seeds 0-15, in headless Chromium.

    python scripts/app_screenshot.py [--weights weights/stylegan_lite-openmoji] [--out docs/app.png]

Needs Debian's chromium and Playwright (``.[dev]``), as tests/test_app_browser.py does; that test
checks the same page but writes its screenshot to a temp dir, so running the tests never changes
a tracked file.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"error: the app did not start within {timeout:.0f} s")


def screenshot(url: str, out: Path) -> None:
    """The page as a first-time visitor sees it: it opens with seeds 0-15 drawn, nothing to click."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.locator("#generate").wait_for(state="visible", timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('#gallery img')].filter("
                                   "img => img.complete && img.naturalWidth).length >= 16", timeout=60_000)
            page.wait_for_timeout(1000)  # let the images finish painting
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", default=None,
                        help="weights to serve (default: the bundled ones)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "app.png")
    args = parser.parse_args(argv)
    port = _free_port()
    weights = [item for w in args.weights or [] for item in ("--weights", w)]
    proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), *weights], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait(url, proc)
        screenshot(url, args.out)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
