"""Session 17's mutants (issue 20): survivors of the blind sets Y, Z (measured at the session's start), the
training sets TA, TB and the statement sweep, each with the test that now kills it; docs/testing.md.
"""
from __future__ import annotations

from mutant_base import Mutant, m  # noqa: F401

S17: list[Mutant] = [
]
