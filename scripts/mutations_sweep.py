"""The boundary sweep's survivors (issue 20; scripts/boundary_sweep.py): a comparison's boundary or a min/max
flipped that no covering fast test noticed, each with a direct test at the bound now (docs/testing.md).
Survivors judged equivalent (or cosmetic) are listed in docs/testing.md without a mutant.
"""
from __future__ import annotations

from mutant_base import Mutant, m

SWEEP: list[Mutant] = [
]
