"""Shared fixtures: tiny configs of both families, built deterministically on CPU."""
from __future__ import annotations

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
    # downloads and dataset caches never touch the user's ~/.cache during tests
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path_factory.mktemp("cache")))
