"""The write operations of the sqlite backend, applied inside the writer's open transaction.

Each function takes a ``Batch`` (the transaction being built by the group-commit writer),
checks its preconditions against the table (which already shows the earlier operations of the
same batch, so CAS checks see them), appends one row and records the event that watchers will
get once the batch commits. A failed precondition raises a ``kybern.storage.errors`` error and
writes nothing, so it does not consume a revision.

Revisions are handed out by the batch, not by SQLite: the writer knows the current revision,
and must be able to roll its counter back if a commit fails.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from kybern.storage import backend, errors
from kybern.storage import sqlite_schema as schema


@dataclass(slots=True)
class Batch:
    """One transaction's worth of operations: hands out revisions and collects events."""

    conn: sqlite3.Connection
    rev: int
    events: list[backend.Event] = field(default_factory=list)
    compacted_rev: int | None = None  # set when the batch moved the compact revision

    def next_rev(self) -> int:
        self.rev += 1
        return self.rev


@dataclass(frozen=True, slots=True)
class _Latest:
    rev: int
    deleted: bool
    create_revision: int
    value: bytes


def _latest(batch: Batch, key: str) -> _Latest | None:
    row = batch.conn.execute(schema.LATEST_ROW, (key,)).fetchone()
    if row is None:
        return None
    return _Latest(rev=row[0], deleted=bool(row[1]), create_revision=row[2], value=row[3] or b"")


def _live(batch: Batch, key: str) -> _Latest:
    latest = _latest(batch, key)
    if latest is None or latest.deleted:
        raise errors.NotFound(key)
    return latest


def _insert(
    batch: Batch,
    key: str,
    *,
    created: bool,
    deleted: bool,
    create_rev: int,
    prev_rev: int,
    value: bytes | None,
    rev: int,
) -> None:
    batch.conn.execute(
        schema.INSERT_ROW, (rev, key, int(created), int(deleted), create_rev, prev_rev, value)
    )


def create(batch: Batch, key: str, value: bytes) -> int:
    latest = _latest(batch, key)
    if latest is not None and not latest.deleted:
        raise errors.KeyExists(key)
    rev = batch.next_rev()
    prev_rev = latest.rev if latest else 0
    _insert(
        batch,
        key,
        created=True,
        deleted=False,
        create_rev=rev,
        prev_rev=prev_rev,
        value=value,
        rev=rev,
    )
    kv = backend.KeyValue(key, value, rev, rev)
    batch.events.append(backend.Event(backend.EventType.CREATE, kv, None))
    return rev


def update(batch: Batch, key: str, value: bytes, expected_rev: int) -> int:
    latest = _live(batch, key)
    if latest.rev != expected_rev:
        raise errors.Conflict(key, expected_rev, latest.rev)
    rev = batch.next_rev()
    _insert(
        batch,
        key,
        created=False,
        deleted=False,
        create_rev=latest.create_revision,
        prev_rev=latest.rev,
        value=value,
        rev=rev,
    )
    kv = backend.KeyValue(key, value, latest.create_revision, rev)
    prev = backend.KeyValue(key, latest.value, latest.create_revision, latest.rev)
    batch.events.append(backend.Event(backend.EventType.UPDATE, kv, prev))
    return rev


def delete(batch: Batch, key: str, expected_rev: int) -> backend.KeyValue:
    latest = _live(batch, key)
    if expected_rev and latest.rev != expected_rev:
        raise errors.Conflict(key, expected_rev, latest.rev)
    rev = batch.next_rev()
    # The tombstone stores no value: the deleted value is the previous row's, which stays as
    # long as the tombstone does (see sqlite_schema).
    _insert(
        batch,
        key,
        created=False,
        deleted=True,
        create_rev=latest.create_revision,
        prev_rev=latest.rev,
        value=None,
        rev=rev,
    )
    kv = backend.KeyValue(key, latest.value, latest.create_revision, rev)
    prev = backend.KeyValue(key, latest.value, latest.create_revision, latest.rev)
    batch.events.append(backend.Event(backend.EventType.DELETE, kv, prev))
    return kv


def compact_chunk(batch: Batch, low: int, high: int) -> int:
    """Compact the revisions in (low, high], given everything at or below ``low`` is compacted.

    A row at or below ``high`` goes if it is a tombstone or if a row at or below ``high``
    supersedes it: exactly the rows that rows (low, high] point at with prev_revision, plus
    the tombstones in (low, high]. Rows superseded only by rows above ``high`` stay, because
    reads at ``high`` and events above it still need them. Returns the number of rows deleted.
    """
    rows = batch.conn.execute(
        "SELECT id, prev_revision, deleted FROM kv WHERE id > ? AND id <= ?", (low, high)
    ).fetchall()
    doomed = {prev for _, prev, _ in rows if prev > 0}
    doomed.update(rev for rev, _, deleted in rows if deleted)
    batch.conn.executemany("DELETE FROM kv WHERE id = ?", [(rev,) for rev in sorted(doomed)])
    batch.conn.execute(schema.WRITE_COMPACT_REV, (schema.COMPACT_REV_KEY, high))
    batch.compacted_rev = high
    return len(doomed)
