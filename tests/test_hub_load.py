"""``sha256=`` reaches the check when a generator is loaded, not only when a file is resolved.

``resolve_weights(..., sha256=)`` has its own tests (tests/test_hub.py); the two loaders that users
call, ``families.load_generator`` and ``Generator.from_pretrained``, take the same keyword and must
hand it on: a checksum that does not match the file (computed here with hashlib) is refused, the
matching one loads the saved weights bit for bit.
"""
from __future__ import annotations

import hashlib

import pytest
import torch

from families import FAMILIES, load_generator
from progan.hub import ChecksumMismatchError
from progan.hub.export import WEIGHTS_NAME


@pytest.mark.parametrize("name", list(FAMILIES))
def test_loaders_check_the_sha256_they_are_given(tmp_path, name):
    family = FAMILIES[name]
    torch.manual_seed(0)
    saved = family.generator_cls(family.presets["tiny"]).eval()
    saved.save_pretrained(tmp_path)
    digest = hashlib.sha256((tmp_path / WEIGHTS_NAME).read_bytes()).hexdigest()
    wrong = ("1" if digest[0] == "0" else "0") + digest[1:]
    for load in (load_generator, family.generator_cls.from_pretrained):
        loaded = load(tmp_path, sha256=digest)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), saved.state_dict().values()))
        with pytest.raises(ChecksumMismatchError, match=wrong):
            load(tmp_path, sha256=wrong)
