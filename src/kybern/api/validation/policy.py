"""Rules (being written)."""

from __future__ import annotations

from kybern.api.validation import common

RULES: dict[str, common.KindRules] = {}
