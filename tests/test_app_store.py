"""The app's model store (app/models.py ``ModelStore``), split from tests/test_app_checks.py.

Refusal above ``max_resolution``, loads onto its device, LRU eviction, the bound on visitors' remote
models, ``python -m app``'s ``--device`` / ``--allow-remote-weights`` reaching the store, and loads
outside the lock: a stalled download (a local HTTP server that holds its reply) blocks neither cached
models nor other downloads, and a second request for it waits for the first.
Also the app's output folders: those older than the max age are deleted when a request makes a new one.
"""
from __future__ import annotations

import http.server
import threading
from concurrent.futures import Future

import pytest
import torch

import app.models
from app.limits import Limits
from app.models import ModelStore
from model_utils import save_tiny_weights, tiny_stylegan


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


def test_store_refuses_models_above_max_resolution(weights):
    store = ModelStore({"sg": str(weights / "sg")}, limits=Limits(max_resolution=8))
    with pytest.raises(ValueError, match="16x16 is above this server's limit of 8 px"):
        store.get("sg")
    assert not store._loaded  # nothing kept
    assert ModelStore({"sg": str(weights / "sg")}, limits=Limits(max_resolution=16)).get("sg").config.resolution == 16


def test_store_loads_generators_onto_its_device(weights):
    """``ModelStore(device=...)`` is where a served generator lives: the meta device (every machine has
    it) stands in for a GPU, which the default ``cpu`` would silently replace."""
    generator = ModelStore({"sg": str(weights / "sg")}, device="meta").get("sg")
    assert {t.device.type for t in [*generator.parameters(), *generator.buffers()]} == {"meta"}


def test_app_main_hands_its_device_and_remote_flag_to_the_store(weights, monkeypatch):
    """``python -m app --device D [--allow-remote-weights]`` builds the page on a store that loads onto D
    and takes visitors' URLs only with the flag (checked without a network: with the flag, a local path
    gets past the flag check to the "local paths" refusal). The server itself is never started."""
    import app.__main__ as entry
    import app.ui

    class NoServer:
        def queue(self, **_kwargs):
            pass

        def launch(self, **_kwargs):
            pass

    stores = []
    monkeypatch.setattr(app.ui, "build_demo", lambda store, **_kwargs: stores.append(store) or NoServer())
    try:
        for flags, refusal in (([], "does not load weights from URLs"),
                               (["--allow-remote-weights"], "local paths are not accepted")):
            assert entry.main(["--weights", str(weights / "sg"), "--device", "meta", *flags]) == 0
            store = stores[-1]
            assert next(store.get(store.default).parameters()).device.type == "meta"
            with pytest.raises(ValueError, match=refusal):
                store.add_remote(str(weights / "sg"))
    finally:
        torch.set_grad_enabled(True)  # main turns gradients off for the server's process


def test_store_lru_and_remote_eviction(weights, monkeypatch):
    loads: list[str] = []

    def fake_load(source, **_kwargs):
        loads.append(source)
        return tiny_stylegan()

    monkeypatch.setattr(app.models, "load_generator", fake_load)
    store = ModelStore({"a": "a", "b": "b", "c": "c"}, cache_size=2)
    first = store.get("a")
    store.get("b")
    assert store.get("a") is first and loads == ["a", "b"]  # cached
    store.get("c")                                          # evicts the least recently used: b
    assert list(store._loaded) == ["a", "c"]
    store.get("b")
    assert loads == ["a", "b", "c", "b"]

    store = ModelStore({"a": "a"}, allow_remote=True, cache_size=10, max_remote=2)
    urls = [f"https://example.invalid/{i}/model.safetensors" for i in range(3)]
    for url in urls:
        assert store.add_remote(url) == url
    # only the newest max_remote=2 visitor models stay listed and loaded; launch models always stay
    assert store.labels == ["a", *urls[1:]]
    assert list(store._loaded) == urls[1:]
    with pytest.raises(ValueError, match="local paths are not accepted"):
        store.add_remote(str(weights / "sg"))
    with pytest.raises(ValueError, match="does not load weights from URLs"):
        ModelStore({"a": "a"}).add_remote(urls[0])


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; a path in ``server.stall`` is held until ``server.release`` is set."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.server.hits.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        if self.path in self.server.stall:
            self.server.arrived.set()
            self.server.release.wait(timeout=120)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stalling_server(weights):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingHandler)
    server.daemon_threads = True
    body = (weights / "sg" / "model.safetensors").read_bytes()
    server.files = {"/slow/model.safetensors": body, "/fast/model.safetensors": body}
    server.stall, server.hits = {"/slow/model.safetensors"}, []
    server.arrived, server.release = threading.Event(), threading.Event()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


class _Watched(Future):
    """The store's Future, telling the test when a second caller has started waiting on a load."""
    waiting = threading.Event()

    def result(self, timeout=None):
        _Watched.waiting.set()
        return super().result(timeout)


def _in_thread(fn, *, timeout: float = 60.0):
    """``fn()`` in a thread; its result, or fail if it has not returned within ``timeout`` (generous)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still blocked after {timeout} s"
    return out["value"]


def test_store_download_blocks_neither_cached_models_nor_other_downloads(weights, stalling_server, monkeypatch):
    monkeypatch.setattr(app.models, "Future", _Watched)
    _Watched.waiting.clear()
    slow, fast = stalling_server.url("/slow/model.safetensors"), stalling_server.url("/fast/model.safetensors")
    store = ModelStore({"sg": str(weights / "sg")}, allow_remote=True)
    cached = store.get("sg")
    results: dict = {}

    def add(key):
        try:
            results[key] = store.add_remote(slow) and store.get(slow)
        except BaseException as exc:  # reported by the asserts below, not lost in the thread
            results[key] = exc

    first, second = (threading.Thread(target=add, args=(key,), daemon=True) for key in ("first", "second"))
    first.start()
    assert stalling_server.arrived.wait(60)                   # the slow download has begun, and stalls
    # meanwhile: a cached model comes back, and another URL downloads and loads ...
    assert _in_thread(lambda: store.get("sg")) is cached
    assert _in_thread(lambda: store.add_remote(fast)) == fast
    assert first.is_alive() and not results                  # ... while the slow download still stalls
    second.start()
    assert _Watched.waiting.wait(60)                          # the second request waits on the first's load
    assert first.is_alive() and second.is_alive() and not results
    stalling_server.release.set()
    first.join(60)
    second.join(60)
    assert isinstance(results["first"], torch.nn.Module), results
    assert results["second"] is results["first"]              # one generator for both requests ...
    assert stalling_server.hits.count("/slow/model.safetensors") == 1  # ... from one download
    assert store.labels == ["sg", slow, fast]                 # listed in the order they were asked for


def test_store_failed_load_is_shared_then_retried(weights, monkeypatch):
    gate, started, calls = threading.Event(), threading.Event(), []

    def failing_load(source, **_kwargs):
        calls.append(source)
        started.set()
        assert gate.wait(60)
        raise ValueError(f"{source}: not a valid safetensors file")

    monkeypatch.setattr(app.models, "load_generator", failing_load)
    monkeypatch.setattr(app.models, "Future", _Watched)
    _Watched.waiting.clear()
    store = ModelStore({"a": "a"})
    errors: list = []

    def get():
        try:
            store.get("a")
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=get, daemon=True) for _ in range(2)]
    threads[0].start()
    assert started.wait(60)
    threads[1].start()
    assert _Watched.waiting.wait(60)
    gate.set()
    for thread in threads:
        thread.join(60)
    assert errors == ["a: not a valid safetensors file"] * 2 and calls == ["a"]  # one load, both told
    with pytest.raises(ValueError, match="not a valid"):
        store.get("a")                                        # not cached: tried again
    assert calls == ["a", "a"] and not store._loading


def test_output_folders_older_than_the_max_age_are_deleted(tmp_path):
    """Each request writes under a fresh folder; making one deletes folders older than 15 minutes (Gradio
    has its own copy by then), so a long-running server's disk does not fill. Ages set with os.utime."""
    import os
    import time

    from app.ui import _OUTPUT_MAX_AGE_S, _Outputs

    outputs = _Outputs(tmp_path / "out")
    old, recent = outputs.new(), outputs.new()
    (old / "grid.png").write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - _OUTPUT_MAX_AGE_S - 60, now - _OUTPUT_MAX_AGE_S - 60))
    os.utime(recent, (now - _OUTPUT_MAX_AGE_S + 60, now - _OUTPUT_MAX_AGE_S + 60))
    fresh = outputs.new()
    assert not old.exists() and recent.is_dir() and fresh.is_dir() and fresh.parent == tmp_path / "out"
    assert _OUTPUT_MAX_AGE_S == 900
