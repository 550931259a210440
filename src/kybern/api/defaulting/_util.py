"""Small helpers for defaulting plain JSON-compatible dicts.

Defaulting runs before validation, so an object may be partial or carry values of the
wrong type. Every helper here skips what it cannot safely default instead of raising:
validation reports the problem afterwards.

Two flavours mirror Go's two kinds of optional fields:

- ``setdefault`` fills a *pointer* field: only when the key is absent or ``null``.
- ``setdefault_empty`` fills a *value* field whose Go zero value (``""``, ``0``) means
  "unset": absent, ``null`` or the zero value all get the default.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def setdefault(obj: Obj, key: str, value: Any) -> None:
    """Set ``obj[key]`` when it is absent or null (Go: pointer is nil)."""
    if obj.get(key) is None:
        obj[key] = _fresh(value)


def setdefault_empty(obj: Obj, key: str, value: Any) -> None:
    """Set ``obj[key]`` when it is absent, null, "" or 0 (Go: value is the zero value)."""
    current = obj.get(key)
    if current is None or current == "" or (current == 0 and not isinstance(current, bool)):
        obj[key] = _fresh(value)


def _fresh(value: Any) -> Any:
    """A default the object may own: containers are copied, immutable scalars shared."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def child(obj: Obj, key: str) -> Obj | None:
    """``obj[key]`` if it is a dict, else None (absent or wrong type)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def ensure(obj: Obj, key: str) -> Obj | None:
    """``obj[key]`` as a dict, creating ``{}`` when absent or null; None if of another type."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else None


def path(obj: Obj, *keys: str) -> Obj | None:
    """Follow dict keys; None as soon as one is missing or not a dict."""
    current: Obj | None = obj
    for key in keys:
        if current is None:
            return None
        current = child(current, key)
    return current


def items(obj: Obj | None, key: str) -> Iterator[Obj]:
    """The dict elements of the list ``obj[key]`` (skips anything else)."""
    if obj is None:
        return
    value = obj.get(key)
    if isinstance(value, list):
        for element in value:
            if isinstance(element, dict):
                yield element


def is_empty(value: Any) -> bool:
    """True for values Go would treat as unset (None, "", 0, empty map/list)."""
    if value is None or value == "" or value == {} or value == []:
        return True
    return value == 0 and not isinstance(value, bool)
