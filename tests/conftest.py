"""Shared fixtures: tiny configs of both families, built deterministically on CPU."""
from __future__ import annotations

import signal

import pytest
import torch

from families import FAMILIES

FAMILY_NAMES = list(FAMILIES)


@pytest.fixture(params=FAMILY_NAMES)
def family(request):
    return FAMILIES[request.param]


@pytest.fixture
def tiny_generator(family):
    torch.manual_seed(0)
    return family.generator_cls(family.presets["tiny"]).eval()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # downloads and dataset caches never touch the user's ~/.cache during tests, and a developer's own
    # offline flag does not change what they see
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("GAN_STUDIO_OFFLINE", raising=False)


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> bytes:
    """A small valid safetensors file's bytes, for the download tests to serve."""
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("payload") / "model.safetensors"
    save_file({"w": torch.arange(12, dtype=torch.float32).reshape(3, 4)}, str(path),
              metadata={"family": "progan"})
    return path.read_bytes()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_launcher(tmp_path_factory):
    """Start ``python -m app`` in subprocesses: ``launch(*args) -> base URL``; all are killed afterwards."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    processes = []

    def launch(*args: str, timeout: float = 180.0) -> str:
        port = _free_port()
        log = tmp_path_factory.mktemp("app-log") / "app.log"
        gradio_tmp = tmp_path_factory.mktemp("gradio-tmp")  # uploads and served outputs: tests look inside
        env = {**os.environ, "GAN_STUDIO_CACHE": str(tmp_path_factory.mktemp("app-cache")),
               "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "GRADIO_TEMP_DIR": str(gradio_tmp)}
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), *args], cwd=root,
                                    stdout=out, stderr=subprocess.STDOUT, env=env)
        processes.append(proc)
        url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    launch.gradio_tmp[url] = gradio_tmp
                    return url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"app did not start within {timeout} s: {log.read_text()[-2000:]}")

    launch.gradio_tmp = {}
    yield launch
    for proc in processes:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A saved tiny generator per family: ``{family name: weights dir}`` (deterministic weights)."""
    out = {}
    for name, family in FAMILIES.items():
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp(name)
        family.generator_cls(family.presets["tiny"]).save_pretrained(path)
        out[name] = path
    return out


@pytest.fixture
def restore_signals():
    """Put back the SIGTERM/SIGUSR1/SIGINT handlers a test (or the trainer it runs) installed."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def server():
    """A local HTTP server (tests/http_utils.py); stopped after the test."""
    from http_utils import route_server

    srv = route_server()
    yield srv
    srv.stop()
