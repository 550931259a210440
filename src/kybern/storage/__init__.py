"""kybern.storage: the revisioned key-value store under the API server (DESIGN.md section 4).

``backend`` defines the protocol every store honours and ``errors`` its vocabulary;
``sqlite`` is the embedded default. ``open_backend`` turns a ``--storage`` style URL or a
plain file path into a backend (not yet started: ``await b.start()`` or ``async with``).
"""

from __future__ import annotations

import os
from typing import Any

from kybern.storage import errors
from kybern.storage.backend import Backend, Event, EventType, KeyValue, ListResult
from kybern.storage.sqlite import SQLiteBackend
from kybern.storage.watchhub import WatchTooSlow

__all__ = [
    "Backend",
    "Event",
    "EventType",
    "KeyValue",
    "ListResult",
    "SQLiteBackend",
    "WatchTooSlow",
    "errors",
    "open_backend",
]

_SQLITE_SCHEME = "sqlite://"


def open_backend(url_or_path: str | os.PathLike[str], **options: Any) -> SQLiteBackend:
    """``sqlite:///abs/state.db``, ``sqlite://rel/state.db`` or a plain path -> SQLiteBackend.

    ``options`` are the SQLiteBackend keyword options (compact_interval, ...).
    """
    target = os.fspath(url_or_path)
    if target.startswith(_SQLITE_SCHEME):
        target = target[len(_SQLITE_SCHEME) :]
    elif "://" in target:
        scheme = target.split("://", 1)[0]
        raise ValueError(f"unsupported storage URL scheme {scheme!r} (supported: sqlite)")
    if not target:
        raise ValueError(f"no database path in {url_or_path!r}")
    return SQLiteBackend(path=target, **options)
