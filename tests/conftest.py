"""Hypothesis profiles for every property test: seeded (derandomized) and without a
example database, so a run is repeatable. ``HYPOTHESIS_PROFILE=ci`` (the default) keeps
the suite's added runtime modest; ``HYPOTHESIS_PROFILE=thorough`` runs ten times more
examples where a test leaves the number to the profile."""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          max_examples=100)
settings.register_profile("thorough", derandomize=True, database=None, deadline=None,
                          max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
