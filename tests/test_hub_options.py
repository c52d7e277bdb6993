"""Options that must arrive where they act, and the edges of the download checks (progan.hub, families).

``load_generator`` / ``from_pretrained`` hand ``device`` and the resolve options (``cache_dir``,
``timeout``, ``force_download``...) on to the code that uses them; the safetensors header check is
pinned at each of its three conditions with bodies built byte by byte. URLs point at a
ThreadingHTTPServer on 127.0.0.1; hf_hub_download is monkeypatched. No test touches the internet.
"""
from __future__ import annotations

import hashlib
import struct

import pytest
import torch

from families import FAMILIES, load_generator
from progan.hub import DownloadError, resolve_weights
from progan.hub import download as hub
from progan.hub.export import WEIGHTS_NAME


def _body(header_len: int, first: bytes, size: int) -> bytes:
    """``size`` bytes: the 8-byte little-endian header length, then ``first``, then spaces."""
    head = struct.pack("<Q", header_len) + first
    return head + b" " * (size - len(head))


# --- the safetensors header check, one condition at a time ---------------------------------------

@pytest.mark.parametrize("header_len, first, size, ok", [
    (2, b"{}", 10, True),            # header fills the file exactly: n = size - 8 is allowed
    (3, b"{}", 10, False),           # n = size - 7: claims more bytes than the file has
    (0, b"{}", 10, False),           # n = 0: no header at all
    (4, b"[1]", 40, False),          # n fits, but the header is not a JSON object
    (4, b"<htm", 40, False),         # n fits, an HTML page's bytes after it
])
def test_header_check_edges(server, tmp_path, header_len, first, size, ok):
    body = _body(header_len, first, size)
    server.routes["/model.safetensors"] = ("ok", body)
    url = server.url("/model.safetensors")
    if ok:
        assert resolve_weights(url, cache_dir=tmp_path, progress=False).read_bytes() == body
    else:
        with pytest.raises(DownloadError, match="did not return a safetensors file"):
            resolve_weights(url, cache_dir=tmp_path, progress=False)
        assert list(tmp_path.iterdir()) == []  # nothing cached, no temp file left


def test_an_upper_case_sha256_is_the_same_checksum(server, tmp_path, payload):
    server.routes["/model.safetensors"] = ("ok", payload)
    digest = hashlib.sha256(payload).hexdigest()
    path = resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path, progress=False,
                           sha256=f"  {digest.upper()}\n")
    assert path.read_bytes() == payload


# --- options handed on ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FAMILIES))
def test_loaders_put_the_generator_on_the_device_asked_for(tmp_path, name):
    """``device`` reaches ``.to``: the meta device (no memory) stands in for a GPU on a CPU machine;
    from a directory or the ``.safetensors`` file itself, given as a string or a ``torch.device``."""
    family = FAMILIES[name]
    family.generator_cls(family.presets["tiny"]).save_pretrained(tmp_path)
    for load in (load_generator, family.generator_cls.from_pretrained):
        for source in (tmp_path, tmp_path / WEIGHTS_NAME):
            on_cpu = load(source)
            assert {p.device.type for p in on_cpu.parameters()} == {"cpu"}
            assert not any(p.requires_grad for p in on_cpu.parameters()) and not on_cpu.training
            for device in ("meta", torch.device("meta")):
                moved = load(source, device=device)
                assert {t.device.type for t in (*moved.parameters(), *moved.buffers())} == {"meta"}
                assert not any(p.requires_grad for p in moved.parameters()) and not moved.training


@pytest.mark.parametrize("name", list(FAMILIES))
def test_loaders_hand_resolve_options_to_the_download(server, tmp_path, name):
    """``cache_dir`` and ``force_download`` given to a loader decide where the URL is cached and
    whether it is fetched again; the file a second cache dir holds is the same bytes."""
    family = FAMILIES[name]
    torch.manual_seed(1)
    saved = family.generator_cls(family.presets["tiny"]).eval()
    saved.save_pretrained(tmp_path / "src")
    server.routes["/g/model.safetensors"] = ("ok", (tmp_path / "src" / WEIGHTS_NAME).read_bytes())
    url = server.url("/g/model.safetensors")
    for i, load in enumerate((load_generator, family.generator_cls.from_pretrained)):
        cache = tmp_path / f"cache{i}"
        loaded = load(url, cache_dir=cache, progress=False)
        assert [p.name for p in cache.iterdir()] == [hub._cache_name(url)]
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), saved.state_dict().values()))
        hits = len(server.hits)
        load(url, cache_dir=cache, progress=False)
        assert len(server.hits) == hits                              # a cache hit: no request
        load(url, cache_dir=cache, progress=False, force_download=True)
        assert len(server.hits) == hits + 1


def test_url_timeout_reaches_urlopen(server, tmp_path, payload, monkeypatch):
    server.routes["/model.safetensors"] = ("ok", payload)
    seen = []
    real = hub.urllib.request.urlopen

    def spy(request, *, timeout):
        seen.append(timeout)
        return real(request, timeout=timeout)

    monkeypatch.setattr(hub.urllib.request, "urlopen", spy)
    resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path, progress=False, timeout=7.5)
    assert seen == [7.5]


def test_hf_force_download_and_timeout_reach_the_hub_client(monkeypatch, tmp_path, payload):
    calls = []
    file = tmp_path / "model.safetensors"
    file.write_bytes(payload)

    def fake_hf_hub_download(**kwargs):
        calls.append(kwargs)
        return str(file)

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.delenv("GAN_STUDIO_OFFLINE", raising=False)
    assert resolve_weights("hf://org/repo", force_download=True, timeout=4.0) == file
    assert calls[0]["force_download"] is True and calls[0]["etag_timeout"] == 4.0


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_every_spelling_of_offline_forbids_the_network(server, tmp_path, payload, monkeypatch, value):
    server.routes["/model.safetensors"] = ("ok", payload)
    monkeypatch.setenv("GAN_STUDIO_OFFLINE", value)
    with pytest.raises(hub.WeightsNotFoundError, match="GAN_STUDIO_OFFLINE=1"):
        resolve_weights(server.url("/model.safetensors"), cache_dir=tmp_path, progress=False)
    assert server.hits == []


def test_schemes_are_case_insensitive(server, tmp_path, payload, monkeypatch):
    """RFC 3986: ``HTTP://`` is ``http://``, and ``HF://`` is ``hf://`` (as parse_hf_uri already reads it)."""
    server.routes["/model.safetensors"] = ("ok", payload)
    url = server.url("/model.safetensors").replace("http://", "HTTP://")
    assert resolve_weights(url, cache_dir=tmp_path, progress=False).read_bytes() == payload
    calls = []
    monkeypatch.setattr("huggingface_hub.hf_hub_download",
                        lambda **kwargs: calls.append(kwargs) or str(tmp_path / next(tmp_path.iterdir()).name))
    resolve_weights("HF://Org/Repo@v1")
    assert (calls[0]["repo_id"], calls[0]["revision"]) == ("Org/Repo", "v1")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_truncated_generator_is_ready_to_sample(name):
    """``truncate_to_resolution`` returns what ``from_pretrained`` returns: eval mode, no gradients."""
    from progan.hub.export import truncate_to_resolution

    family = FAMILIES[name]
    config = type(family.presets["tiny"])(**{**family.presets["tiny"].__dict__, "resolution": 16})
    full = family.generator_cls(config).train()
    small = truncate_to_resolution(full, 8)
    assert not small.training and not any(p.requires_grad for p in small.parameters())
    assert small.config.resolution == 8
