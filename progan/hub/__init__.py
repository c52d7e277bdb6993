"""Model files and where they come from: the safetensors format, and path/URL/``hf://`` resolution.

- ``export``: ``save_pretrained`` / ``from_pretrained`` (weights + config in one safetensors file,
  strict loading, atomic writes). Imports only ``progan.config``.
- ``download``: ``resolve_weights(source)`` turns a directory, file, http(s) URL or ``hf://`` URI
  into a verified local ``model.safetensors``.

Nothing here imports the training loop or the metrics.
"""
from .download import (ChecksumMismatchError, DownloadError, HfLocation, WeightsNotFoundError, cache_root,
                       default_cache_dir, parse_hf_uri, resolve_weights, sha256_file)
from .export import PretrainedError, read_metadata, read_pretrained, save_pretrained

__all__ = [
    "ChecksumMismatchError", "DownloadError", "HfLocation", "WeightsNotFoundError",
    "cache_root", "default_cache_dir", "parse_hf_uri", "resolve_weights", "sha256_file",
    "PretrainedError", "read_metadata", "read_pretrained", "save_pretrained",
]
