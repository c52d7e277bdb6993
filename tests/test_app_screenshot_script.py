"""scripts/app_screenshot.py's wait for the app: it polls until the page answers, within its timeout."""
from __future__ import annotations

import http.server
import threading

import pytest

from script_utils import load_script


@pytest.fixture(scope="module")
def screenshot_script():
    return load_script("app_screenshot")


class _Running:
    returncode = None

    def poll(self):
        return None


def test_wait_returns_once_the_page_answers_and_gives_up_after_the_timeout(screenshot_script):
    """A page that answers at once ends the wait (the deadline is now + timeout, in the future); a port
    nobody serves is given up on with the one-line error after the timeout."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        screenshot_script._wait(f"http://127.0.0.1:{server.server_address[1]}/", _Running(), timeout=10.0)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(SystemExit, match="did not start within 1 s"):
        screenshot_script._wait(f"http://127.0.0.1:{screenshot_script._free_port()}/", _Running(), timeout=1.0)
