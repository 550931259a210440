"""Defaults for the smaller API groups (filled in below as they are written)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any], bool], None]] = {}
