"""Settings for the whole test suite."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) measures wall time, which a loaded 2-core CI
# machine does not give reliably; pytest-timeout bounds every test instead.
settings.register_profile("kybern", deadline=None)
settings.load_profile("kybern")
