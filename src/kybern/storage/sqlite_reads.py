"""Reads for the sqlite backend: a small pool of read connections and the queries they run.

Reads never touch the writer's connection or the event loop: each pool thread has its own
connection, and WAL mode lets it read while the writer commits. Every query runs in one read
transaction that first checks the persisted compact revision, so a read can never see a
half-compacted past: either its snapshot predates the compaction and the rows are all there,
or it sees the new compact revision and raises Compacted.

Reading "at revision R" means: for each key, the row with the highest id <= R; the key exists
at R if that row is not a tombstone.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from kybern.storage import backend, errors
from kybern.storage import sqlite_schema as schema

T = TypeVar("T")

_MAX_CODE_POINT = 0x10FFFF


class Readers:
    """Read connections, one per pool thread, opened lazily."""

    def __init__(self, path: str, *, threads: int = 4) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kybern-sqlite-r")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, query)

    def _call(self, query: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.open_reader(self._path)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return query(conn)

    def close(self) -> None:
        """Blocking: waits for running reads, then closes every connection."""
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """[low, high) bounds of the keys starting with ``prefix`` (high None: no upper bound).

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so "the prefix with
    its last code point incremented" is the first string that no longer has the prefix.
    """
    stem = prefix
    while stem and ord(stem[-1]) == _MAX_CODE_POINT:
        stem = stem[:-1]
    if not stem:
        return prefix, None
    bump = ord(stem[-1]) + 1
    if 0xD800 <= bump <= 0xDFFF:  # surrogates are not valid in UTF-8: skip past them
        bump = 0xE000
    return prefix, stem[:-1] + chr(bump)


@contextmanager
def snapshot(conn: sqlite3.Connection, rev: int) -> Iterator[None]:
    """A read transaction at a revision that must not be compacted away."""
    conn.execute("BEGIN")
    try:
        compacted = schema.read_compact_rev(conn)
        if rev < compacted:
            raise errors.Compacted(rev, compacted)
        yield
    finally:
        conn.execute("COMMIT")


def get_at(conn: sqlite3.Connection, key: str, rev: int) -> backend.KeyValue:
    with snapshot(conn, rev):
        row = conn.execute(
            "SELECT id, deleted, create_revision, value FROM kv"
            " WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
            (key, rev),
        ).fetchone()
    if row is None or row[1]:
        raise errors.NotFound(key)
    return backend.KeyValue(key, row[3] or b"", row[2], row[0])


def list_at(
    conn: sqlite3.Connection, prefix: str, rev: int, limit: int, start_after: str
) -> tuple[list[backend.KeyValue], bool]:
    """Live keys under ``prefix`` at ``rev`` after ``start_after``: (up to limit kvs, more)."""
    low, high = prefix_range(prefix)
    where, params = _name_bounds("kv.name", low, high)
    # Walk the (name, id) index in name order and keep each name's newest row <= rev: this
    # streams, so a page stops after ``limit`` keys instead of grouping the whole range.
    sql = (
        "SELECT kv.id, kv.name, kv.create_revision, kv.value FROM kv"
        f" WHERE {where} AND kv.name > ? AND kv.id <= ? AND kv.deleted = 0"
        " AND kv.id = (SELECT MAX(newer.id) FROM kv AS newer"
        "              WHERE newer.name = kv.name AND newer.id <= ?)"
        " ORDER BY kv.name LIMIT ?"
    )
    fetch = limit + 1 if limit > 0 else -1  # one extra row tells whether more remain
    with snapshot(conn, rev):
        rows = conn.execute(sql, (*params, start_after, rev, rev, fetch)).fetchall()
    more = limit > 0 and len(rows) > limit
    kvs = [backend.KeyValue(name, value or b"", crev, mod) for mod, name, crev, value in rows]
    return (kvs[:limit] if more else kvs), more


def history(
    conn: sqlite3.Connection, prefix: str, after: int, upto: int, limit: int
) -> list[backend.Event]:
    """Events for keys under ``prefix`` with after < revision <= upto, oldest first."""
    low, high = prefix_range(prefix)
    # "+kv.name" keeps SQLite on the primary key: the revision range is the narrow one.
    where, params = _name_bounds("+kv.name", low, high)
    sql = (
        "SELECT kv.id, kv.name, kv.created, kv.deleted, kv.create_revision, kv.value,"
        " kv.prev_revision, prev.value FROM kv LEFT JOIN kv AS prev ON prev.id = kv.prev_revision"
        f" WHERE kv.id > ? AND kv.id <= ? AND {where} ORDER BY kv.id LIMIT ?"
    )
    with snapshot(conn, after):
        rows = conn.execute(sql, (after, upto, *params, limit)).fetchall()
    return [_event(row) for row in rows]


def _name_bounds(column: str, low: str, high: str | None) -> tuple[str, tuple[str, ...]]:
    if high is None:
        return f"{column} >= ?", (low,)
    return f"{column} >= ? AND {column} < ?", (low, high)


def _event(row: tuple[Any, ...]) -> backend.Event:
    rev, key, created, deleted, create_rev, value, prev_rev, prev_value = row
    if created:
        kv = backend.KeyValue(key, value or b"", create_rev, rev)
        return backend.Event(backend.EventType.CREATE, kv, None)
    prev = backend.KeyValue(key, prev_value or b"", create_rev, prev_rev)
    if deleted:
        kv = backend.KeyValue(key, prev.value, create_rev, rev)
        return backend.Event(backend.EventType.DELETE, kv, prev)
    kv = backend.KeyValue(key, value or b"", create_rev, rev)
    return backend.Event(backend.EventType.UPDATE, kv, prev)
