"""Validation of API objects: the three entry points the API server calls.

(Initial stub: rules are being filled in; the signatures are final.)
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors, kinds


def validate_create(info: kinds.ResourceInfo, obj: dict[str, Any]) -> list[errors.Cause]:
    """Causes that make ``obj`` invalid for creation (empty when valid).

    Raises errors.BadRequest when a field has the wrong JSON type."""
    return []


def validate_update(
    info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]
) -> list[errors.Cause]:
    """Causes that make replacing ``old`` by ``new`` invalid."""
    return []


def validate_status_update(
    info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]
) -> list[errors.Cause]:
    """Causes that make a /status write invalid."""
    return []
