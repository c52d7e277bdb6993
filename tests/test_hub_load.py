"""``sha256=`` reaches the check when a generator is loaded, not only when a file is resolved.

``resolve_weights(..., sha256=)`` has its own tests (tests/test_hub.py); the two loaders that users
call, ``families.load_generator`` and ``Generator.from_pretrained``, take the same keyword and must
hand it on: a checksum that does not match the file (computed here with hashlib) is refused, the
matching one loads the saved weights bit for bit.

``device=`` likewise: loading onto the ``meta`` device (no GPU needed) must leave every parameter and
buffer there, through both loaders and from a directory or the ``.safetensors`` file itself; a loader
that drops the keyword leaves them on the CPU, where a GPU run would compute slowly or fail.
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


@pytest.mark.parametrize("name", list(FAMILIES))
def test_loaders_put_the_generator_on_the_device_they_are_given(tmp_path, name):
    family = FAMILIES[name]
    torch.manual_seed(0)
    saved = family.generator_cls(family.presets["tiny"]).eval()
    saved.save_pretrained(tmp_path)
    shapes = {key: value.shape for key, value in saved.state_dict().items()}
    for load in (load_generator, family.generator_cls.from_pretrained):
        for source in (tmp_path, tmp_path / WEIGHTS_NAME):
            for device in ("meta", torch.device("meta")):
                loaded = load(source, device=device)
                tensors = dict(loaded.named_parameters()) | dict(loaded.named_buffers())   # non-persistent too
                assert len(tensors) >= len(shapes)
                assert {key: t.device.type for key, t in tensors.items()} == {key: "meta" for key in tensors}
                assert {key: t.shape for key, t in loaded.state_dict().items()} == shapes
                assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
            cpu = load(source)                                              # the default stays the CPU
            assert {t.device.type for t in cpu.state_dict().values()} == {"cpu"}
