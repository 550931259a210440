"""The Backend protocol: a revisioned key-value store with watch (the shape of kine's Backend).

Every mutation gets the next value of one global, monotonically increasing revision. Keys are
strings like ``/registry/<group>/<resource>/<namespace>/<name>``; values are opaque bytes (the
API server stores JSON). Revisions are ints >= 1; ``rev=0`` always means "current".

Semantics every backend must honour (checked by tests/unit/storage/contract.py):

- create(key, value) -> rev. KeyExists if the key currently exists (a deleted key may be
  created again; it gets a new create_revision).
- get(key, rev=0) -> KeyValue as of ``rev`` (0: latest). NotFound if absent at that revision,
  Compacted if rev < compacted_rev(), FutureRevision if rev > current_rev().
- list(prefix, rev=0, limit=0, start_after="") -> ListResult: live keys with the prefix at
  ``rev``, sorted by key, strictly greater than ``start_after``; at most ``limit`` (0: all);
  ``more`` says whether keys remain. ``revision`` is the revision the list was read at (for
  rev=0 the current revision at read time), so a paged list can continue at the same revision.
- update(key, value, expected_rev) -> rev. CAS on the key's mod_revision. NotFound if absent,
  Conflict if mod_revision != expected_rev.
- delete(key, expected_rev=0) -> KeyValue: the value that was deleted, with mod_revision set
  to the deletion's revision. expected_rev 0 deletes unconditionally. NotFound, Conflict.
- watch(prefix, after_rev) -> async iterator of Events for keys with the prefix, in revision
  order, starting with the first revision > after_rev (history first, then live). Compacted
  if after_rev < compacted_rev() (raised on first iteration). The iterator ends only when the
  consumer stops iterating (aclose) or the backend closes.
- compact(rev): forget history at or below rev (the latest version of each live key stays).
- current_rev() and compacted_rev() are cheap (no I/O).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KeyValue  # for DELETE: the deleted value, mod_revision = the deletion's revision
    prev: KeyValue | None  # the value before this event (None for CREATE)

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    revision: int
    kvs: list[KeyValue]
    more: bool


class Backend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, key: str, value: bytes) -> int: ...

    async def get(self, key: str, rev: int = 0) -> KeyValue: ...

    async def list(
        self, prefix: str, rev: int = 0, limit: int = 0, start_after: str = ""
    ) -> ListResult: ...

    async def update(self, key: str, value: bytes, expected_rev: int) -> int: ...

    async def delete(self, key: str, expected_rev: int = 0) -> KeyValue: ...

    def watch(self, prefix: str, after_rev: int) -> AsyncIterator[Event]: ...

    async def compact(self, rev: int) -> None: ...

    def current_rev(self) -> int: ...

    def compacted_rev(self) -> int: ...
