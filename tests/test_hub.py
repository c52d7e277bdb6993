"""Tests for progan.hub: local paths and downloads from a local HTTP server (hf://: tests/test_hub_hf.py).

No test touches the internet: URLs point at a ThreadingHTTPServer on 127.0.0.1 (ephemeral port)
that each test stops on teardown; hf_hub_download is monkeypatched.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from progan.hub import download as hub
from progan.hub import ChecksumMismatchError, DownloadError, WeightsNotFoundError, resolve_weights, sha256_file


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- local paths ---------------------------------------------------------------------------------

def test_local_file_and_directory(tmp_path, payload):
    (tmp_path / "model.safetensors").write_bytes(payload)
    assert resolve_weights(tmp_path / "model.safetensors") == (tmp_path / "model.safetensors").resolve()
    assert resolve_weights(str(tmp_path)) == (tmp_path / "model.safetensors").resolve()
    assert resolve_weights(tmp_path, sha256=_sha(payload)).read_bytes() == payload


def test_local_missing_and_empty_directory(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="no weights at"):
        resolve_weights(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):  # subclass contract
        resolve_weights(tmp_path)


def test_local_path_object_is_never_a_url(tmp_path, monkeypatch, payload):
    # A Path object is always local, even when its text starts like a URL.
    monkeypatch.chdir(tmp_path)
    Path("http:", "host").mkdir(parents=True)
    Path("http:", "host", "model.safetensors").write_bytes(payload)
    assert resolve_weights(Path("http://host")).read_bytes() == payload


def test_local_checksum_mismatch(tmp_path, payload):
    (tmp_path / "model.safetensors").write_bytes(payload)
    with pytest.raises(ChecksumMismatchError, match=f"expected {'0' * 64}, got {_sha(payload)}"):
        resolve_weights(tmp_path, sha256="0" * 64)


def test_bad_arguments():
    with pytest.raises(ValueError, match="64 hex"):
        resolve_weights("x", sha256="abc")
    with pytest.raises(ValueError, match="unsupported"):
        resolve_weights("s3://bucket/model.safetensors")


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 9000  # > 1 MiB chunk, so the loop runs more than once
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == _sha(data)


# --- http(s) downloads ---------------------------------------------------------------------------

def test_cached_file_is_readable_by_others(server, tmp_path, payload):
    server.routes["/model.safetensors"] = ("ok", payload)
    path = resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path, progress=False)
    assert path.stat().st_mode & 0o044 == 0o044  # not mkstemp's owner-only 0600


def test_download_then_cache_hit_offline(server, tmp_path, payload):
    server.routes["/m/model.safetensors"] = ("ok", payload)
    url, cache = server.url("/m/model.safetensors"), tmp_path / "cache"
    path = resolve_weights(url, cache_dir=cache, sha256=_sha(payload), progress=False)
    assert path.parent == cache and path.name.endswith("-model.safetensors")
    assert path.read_bytes() == payload
    assert _files(cache) == [path.name]  # no temp file left next to it

    server.stop()  # any network access now fails, so a hit proves the cache was used
    assert resolve_weights(url, cache_dir=cache, sha256=_sha(payload)) == path
    assert resolve_weights(url, cache_dir=cache) == path
    assert server.hits == ["/m/model.safetensors"]


def test_default_cache_dir_from_env(server, tmp_path, payload, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "default-cache"))
    server.routes["/model.safetensors"] = ("ok", payload)
    path = resolve_weights(server.url("/model.safetensors"), progress=False)
    assert path.parent == tmp_path / "default-cache" / "weights"


def test_same_basename_different_urls_do_not_collide(server, tmp_path, payload):
    other = payload.replace(b"progan", b"styleg")  # same length header, different bytes
    server.routes.update({"/a/model.safetensors": ("ok", payload), "/b/model.safetensors": ("ok", other)})
    a = resolve_weights(server.url("/a/model.safetensors"), cache_dir=tmp_path, progress=False)
    b = resolve_weights(server.url("/b/model.safetensors"), cache_dir=tmp_path, progress=False)
    assert a != b and a.read_bytes() == payload and b.read_bytes() == other


def test_the_cache_name_hashes_the_whole_url_host_and_query_included():
    """<sha256(url)>-<basename>: the same path on another host or with another query is another file."""
    import hashlib

    from progan.hub.download import _cache_name

    for url in ("http://127.0.0.1:1/m/model.safetensors", "http://localhost:1/m/model.safetensors",
                "http://127.0.0.1:1/m/model.safetensors?rev=2"):
        assert _cache_name(url) == hashlib.sha256(url.encode()).hexdigest() + "-model.safetensors"


def test_checksum_mismatch_leaves_nothing(server, tmp_path, payload):
    server.routes["/model.safetensors"] = ("ok", payload)
    with pytest.raises(ChecksumMismatchError) as info:
        resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path, sha256="ab" * 32)
    assert f"expected {'ab' * 32}, got {_sha(payload)}" in str(info.value)
    assert _files(tmp_path) == []


def test_stale_cached_file_is_redownloaded(server, tmp_path, payload):
    server.routes["/model.safetensors"] = ("ok", payload)
    url = server.url("/model.safetensors")
    path = resolve_weights(url, cache_dir=tmp_path, progress=False)
    path.write_bytes(b"corrupted")
    assert resolve_weights(url, cache_dir=tmp_path, sha256=_sha(payload)).read_bytes() == payload
    assert len(server.hits) == 2


def test_force_download_ignores_cache(server, tmp_path, payload):
    server.routes["/model.safetensors"] = ("ok", payload)
    url = server.url("/model.safetensors")
    resolve_weights(url, cache_dir=tmp_path, progress=False)
    resolve_weights(url, cache_dir=tmp_path, progress=False, force_download=True)
    assert len(server.hits) == 2


@pytest.mark.parametrize("mode, message", [("short", "truncated"), ("chunked-raise", "interrupted")])
def test_interrupted_download_leaves_nothing_then_recovers(server, tmp_path, payload, mode, message):
    server.routes["/model.safetensors"] = (mode, payload)
    url = server.url("/model.safetensors")
    with pytest.raises(DownloadError, match=message):
        resolve_weights(url, cache_dir=tmp_path, progress=False, timeout=5)
    assert _files(tmp_path) == []

    server.routes["/model.safetensors"] = ("ok", payload)
    assert resolve_weights(url, cache_dir=tmp_path, progress=False).read_bytes() == payload


@pytest.mark.parametrize("mode", ["ok", "chunked"])  # refused from Content-Length, or while streaming
def test_download_size_cap(server, tmp_path, payload, mode):
    server.routes["/model.safetensors"] = (mode, payload)
    url = server.url("/model.safetensors")
    with pytest.raises(DownloadError, match="download limit"):
        resolve_weights(url, cache_dir=tmp_path, progress=False, max_bytes=len(payload) - 1)
    assert _files(tmp_path) == []
    assert resolve_weights(url, cache_dir=tmp_path, progress=False, max_bytes=len(payload)).read_bytes() == payload


def test_keyboard_interrupt_mid_download_leaves_nothing(server, tmp_path, payload, monkeypatch):
    class _CtrlC:  # stands in for tqdm: the first progress update is "the user pressed Ctrl-C"
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(hub, "tqdm", _CtrlC)
    server.routes["/model.safetensors"] = ("ok", payload)
    with pytest.raises(KeyboardInterrupt):
        resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path)
    assert _files(tmp_path) == []


def test_http_404_is_one_line_download_error(server, tmp_path):
    with pytest.raises(DownloadError) as info:
        resolve_weights(server.url("/missing.safetensors"), cache_dir=tmp_path)
    assert "404" in str(info.value) and "\n" not in str(info.value)
    assert _files(tmp_path) == []


def test_unreachable_host_is_download_error(server, tmp_path):
    url = server.url("/model.safetensors")
    server.stop()
    with pytest.raises(DownloadError, match="cannot reach"):
        resolve_weights(url, cache_dir=tmp_path, timeout=5)


def test_non_safetensors_body_is_not_cached(server, tmp_path):
    server.routes["/model.safetensors"] = ("ok", b"<html>please log in</html>")
    with pytest.raises(DownloadError, match="not return a safetensors"):
        resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path)
    assert _files(tmp_path) == []



@pytest.mark.parametrize("beyond", [1, 4, 8])
def test_a_body_cut_inside_its_safetensors_header_is_not_cached(server, tmp_path, beyond):
    """A safetensors file is 8 bytes of header length N, then N bytes of JSON: a body of S bytes can hold
    at most N = S - 8. One that claims a header ``beyond`` bytes past its end was cut short (a proxy, a
    full disk) and must not be cached, even though it starts like a real file."""
    header = b'{"__metadata__":{"format":"pt"}}'
    body = (len(header) + beyond).to_bytes(8, "little") + header
    server.routes["/model.safetensors"] = ("ok", body)
    with pytest.raises(DownloadError, match="not return a safetensors"):
        resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path)
    assert _files(tmp_path) == []


def test_a_header_that_fills_the_whole_body_is_a_complete_file(server, tmp_path):
    """The bound's other side: N = S - 8 exactly (a safetensors file with no tensors) is whole, and cached."""
    header = b'{"__metadata__":{"format":"pt"}}'
    body = len(header).to_bytes(8, "little") + header
    server.routes["/model.safetensors"] = ("ok", body)
    assert resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path).read_bytes() == body


def test_offline_env_cache_miss_and_hit(server, tmp_path, payload, monkeypatch):
    server.routes["/model.safetensors"] = ("ok", payload)
    url = server.url("/model.safetensors")
    monkeypatch.setenv("GAN_STUDIO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="GAN_STUDIO_OFFLINE=1"):
        resolve_weights(url, cache_dir=tmp_path)
    assert server.hits == []

    monkeypatch.delenv("GAN_STUDIO_OFFLINE")
    path = resolve_weights(url, cache_dir=tmp_path, progress=False)
    monkeypatch.setenv("GAN_STUDIO_OFFLINE", "1")
    assert resolve_weights(url, cache_dir=tmp_path, sha256=_sha(payload)) == path
    with pytest.raises(WeightsNotFoundError, match="wrong sha256"):
        resolve_weights(url, cache_dir=tmp_path, sha256="0" * 64)
    with pytest.raises(DownloadError, match="force_download"):
        resolve_weights(url, cache_dir=tmp_path, force_download=True)
    assert len(server.hits) == 1
    assert _files(tmp_path) == [path.name]  # the offline refusals did not touch the good copy


def test_hub_imports_nothing_above_progan():
    code = ("import sys, progan.hub; bad = sorted(m for m in sys.modules "
            "if m.split('.')[0] in {'stylegan_lite', 'app', 'data_prep'}); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert out.stdout.strip() == "[]"


def test_cache_root_follows_gan_studio_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("GAN_STUDIO_CACHE")
    assert hub.cache_root() == tmp_path / "xdg" / "gan-studio"
    assert hub.default_cache_dir() == tmp_path / "xdg" / "gan-studio" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", "")                      # empty counts as unset (XDG spec)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.cache_root() == tmp_path / "home" / ".cache" / "gan-studio"


def test_making_a_download_durable_leaves_no_descriptor_open(tmp_path):
    """After each download the cache directory is fsynced through a descriptor of its own; a long-lived app
    that loads many remote models must get every one back (a leak ends in "too many open files")."""
    import os

    from progan.hub.download import _fsync_dir

    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    if before is None:
        pytest.skip("needs /proc/self/fd")
    for _ in range(20):
        _fsync_dir(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before
