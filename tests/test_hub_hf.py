"""Tests for progan.hub's hf:// sources, split from tests/test_hub.py: parsing, the arguments handed to
``huggingface_hub.hf_hub_download`` (monkeypatched: no test touches the internet), offline mode, the
cache directory, and how the Hub's errors are mapped.
"""
from __future__ import annotations

import hashlib

import pytest

from progan.hub import (ChecksumMismatchError, DownloadError, HfLocation, WeightsNotFoundError,
                        parse_hf_uri, resolve_weights)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("uri, expected", [
    ("hf://org/repo", HfLocation("org/repo", "model.safetensors", None)),
    ("hf://org/repo/", HfLocation("org/repo", "model.safetensors", None)),
    ("hf://org/repo@v1.0", HfLocation("org/repo", "model.safetensors", "v1.0")),
    ("hf://org/repo/g.safetensors", HfLocation("org/repo", "g.safetensors", None)),
    ("hf://org/repo/ema/256/g.safetensors", HfLocation("org/repo", "ema/256/g.safetensors", None)),
    ("hf://org/repo@main/ema", HfLocation("org/repo", "ema/model.safetensors", "main")),
    ("hf://org/repo@refs%2Fpr%2F3/x.safetensors", HfLocation("org/repo", "x.safetensors", "refs/pr/3")),
    ("hf://org/repo@0123abc", HfLocation("org/repo", "model.safetensors", "0123abc")),
    ("HF://Org/Repo", HfLocation("Org/Repo", "model.safetensors", None)),
])
def test_parse_hf_uri(uri, expected):
    assert parse_hf_uri(uri) == expected


@pytest.mark.parametrize("uri", [
    "hf://", "hf://org", "hf://org/", "hf:///repo", "hf://org/@v1", "hf://org/repo@",
    "hf://org/repo//x.safetensors", "hf://org/repo/../x.safetensors", "https://org/repo",
])
def test_parse_hf_uri_rejects(uri):
    with pytest.raises(ValueError):
        parse_hf_uri(uri)


@pytest.fixture
def fake_hub(monkeypatch, tmp_path, payload):
    calls: list[dict] = []
    file = tmp_path / "hf-cache" / "model.safetensors"
    file.parent.mkdir()
    file.write_bytes(payload)

    def fake_hf_hub_download(**kwargs):
        calls.append(kwargs)
        return str(file)

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    return calls, file


def test_hf_download_arguments_and_checksum(fake_hub, payload):
    calls, file = fake_hub
    assert resolve_weights("hf://org/repo@v2/ema/g.safetensors", sha256=_sha(payload)) == file
    assert calls[0]["repo_id"] == "org/repo"
    assert calls[0]["filename"] == "ema/g.safetensors"
    assert calls[0]["revision"] == "v2"
    assert calls[0]["local_files_only"] is False and calls[0]["cache_dir"] is None
    assert calls[0]["etag_timeout"] == 30.0 and calls[0]["force_download"] is False
    with pytest.raises(ChecksumMismatchError):
        resolve_weights("hf://org/repo", sha256="0" * 64)


def test_hf_offline_and_cache_dir(fake_hub, monkeypatch, tmp_path):
    calls, _ = fake_hub
    monkeypatch.setenv("GAN_STUDIO_OFFLINE", "1")
    resolve_weights("hf://org/repo", cache_dir=tmp_path / "c")
    assert calls[0]["local_files_only"] is True
    assert calls[0]["cache_dir"] == tmp_path / "c" / "huggingface"
    with pytest.raises(DownloadError, match="force_download"):
        resolve_weights("hf://org/repo", force_download=True)


def test_hf_errors_are_mapped(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline_miss(**kwargs):
        raise LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline_miss)
    with pytest.raises(WeightsNotFoundError, match="local Hugging Face cache"):
        resolve_weights("hf://org/repo")

    def broken(**kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(DownloadError) as info:
        resolve_weights("hf://org/repo")
    assert "boom" in str(info.value) and "\n" not in str(info.value)


def test_a_repo_revision_or_file_missing_on_the_hub_is_weights_not_found(monkeypatch):
    """A Hub 404 (no such repo, revision or file) is WeightsNotFoundError naming the hf:// source and what
    was missing, not a generic download failure (which callers would retry)."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    for kind in (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        error = kind.__new__(kind)                  # their constructors want an HTTP response (client-specific)
        Exception.__init__(error, "404 missing")

        def missing(**kwargs):
            raise error

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
        with pytest.raises(WeightsNotFoundError) as info:
            resolve_weights("hf://org/repo@v2/model.safetensors")
        assert str(info.value) == f"hf://org/repo@v2/model.safetensors not found on the Hub: {type(error).__name__}"
        assert not isinstance(info.value, DownloadError)
