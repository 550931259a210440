"""Defaults for the smaller API groups (filled in below as they are written)."""

from __future__ import annotations

DEFAULTERS: dict[tuple[str, str], object] = {}
