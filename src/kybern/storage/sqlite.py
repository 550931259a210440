"""The embedded sqlite Backend: durable, revisioned, watchable; kybern's default store.

How the pieces fit (each in its own module):

- ``sqlite_schema``: the log-structured table (one row per revision, like kine) and pragmas
  (WAL, synchronous=FULL, incremental auto-vacuum).
- ``sqlite_writer``: one thread owns the write connection and commits queued operations in
  batches (group commit); ``sqlite_ops`` are the operations it applies.
- ``sqlite_reads``: read connections in a thread pool and the snapshot queries.
- ``watchhub``: committed events are pushed from the writer to watchers on the event loop.
- ``compaction``: the history window policy; this module runs it in the background, in
  small chunks that go through the writer queue like any write, so writers never wait long.

The API server is the only writer, so live watch events come straight from the writer in
this process, never from polling the table; a ``<path>.lock`` file (flock) keeps a second
process from opening the same database. Nothing here blocks the event loop: all SQLite
calls happen on the writer thread or the read pool.

Compaction keeps history that is younger than ``history_window_seconds`` OR within
``history_window_revisions`` of the current revision (see ``compaction``), runs every
``compact_interval`` seconds or after ``compact_every_writes`` writes, and then gives
surplus free pages back and truncates the WAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kybern.storage import backend, compaction, errors, watchhub
from kybern.storage import sqlite_ops as ops
from kybern.storage import sqlite_reads as reads
from kybern.storage import sqlite_schema as schema
from kybern.storage import sqlite_writer as writer

log = logging.getLogger(__name__)

HISTORY_PAGE = 1000  # rows per read while a watcher catches up on history
MAX_VACUUM_PAGES = 1024  # pages given back to the filesystem per compaction run (4 MiB)


@dataclass(slots=True)
class _Running:
    writer: writer.Writer
    readers: reads.Readers
    hub: watchhub.WatchHub
    compactor: asyncio.Task[None] | None
    lock_fd: int  # holds <path>.lock for as long as the store is open


class SQLiteBackend:
    """A ``backend.Backend`` on one SQLite file. See the module docstring for the design."""

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        compact_interval: float = 30.0,
        history_window_seconds: float = compaction.DEFAULT_WINDOW_SECONDS,
        history_window_revisions: int = compaction.DEFAULT_WINDOW_REVISIONS,
        clock: Callable[[], float] = time.monotonic,
        compact_batch: int = 500,
        compact_every_writes: int = 10_000,
        watch_queue_limit: int = watchhub.DEFAULT_QUEUE_LIMIT,
        read_threads: int = 4,
        max_batch: int = 1000,
    ) -> None:
        """``compact_interval`` <= 0 disables background compaction (``compact`` still works).

        Background compaction also starts early after ``compact_every_writes`` writes; it
        forgets history in transactions of ``compact_batch`` revisions. A watcher more than
        ``watch_queue_limit`` events behind is cut off with ``watchhub.WatchTooSlow``.
        """
        self.path = os.fspath(path)
        self._compact_interval = compact_interval
        self._window_seconds = history_window_seconds
        self._window_revisions = history_window_revisions
        self._clock = clock
        self._compact_batch = compact_batch
        self._compact_every_writes = compact_every_writes
        self._watch_queue_limit = watch_queue_limit
        self._read_threads = read_threads
        self._max_batch = max_batch
        self._revclock = compaction.RevisionClock()
        self._compact_lock = asyncio.Lock()
        self._compact_wake = asyncio.Event()
        self._writes_since_compact = 0  # writer thread only
        self._state: _Running | None = None
        self._closed = False
        self.compacted_rows = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state is not None or self._closed:
            raise RuntimeError("SQLiteBackend.start() called twice")
        lock = await asyncio.to_thread(schema.lock_exclusive, self.path)
        try:
            conn = await asyncio.to_thread(schema.open_writer, self.path)
            stored = await asyncio.to_thread(schema.load_state, conn)
        except BaseException:
            os.close(lock)
            raise
        self._revclock.note(self._clock(), stored.current_rev)
        hub = watchhub.WatchHub(dispatched_rev=stored.current_rev, limit=self._watch_queue_limit)
        w = writer.Writer(
            conn,
            rev=stored.current_rev,
            compacted_rev=stored.compacted_rev,
            loop=asyncio.get_running_loop(),
            publish=hub.publish,
            on_commit=self._on_commit,
            max_batch=self._max_batch,
        )
        w.start()
        readers = reads.Readers(self.path, threads=self._read_threads)
        self._state = _Running(w, readers, hub, None, lock)
        if self._compact_interval > 0:
            self._state.compactor = asyncio.create_task(self._compact_loop())

    async def close(self) -> None:
        """Stop compaction, end every watch, finish queued writes, close all connections."""
        state, self._state = self._state, None
        self._closed = True
        if state is None:
            return
        if state.compactor is not None:
            state.compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.compactor
        state.hub.close()
        await state.writer.stop()
        await asyncio.to_thread(state.readers.close)
        os.close(state.lock_fd)

    async def __aenter__(self) -> SQLiteBackend:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _running(self) -> _Running:
        if self._state is None:
            raise RuntimeError("storage backend is closed" if self._closed else "not started")
        return self._state

    # -- revisions ------------------------------------------------------------------------

    def current_rev(self) -> int:
        return self._state.writer.rev if self._state else 0

    def compacted_rev(self) -> int:
        return self._state.writer.compacted_rev if self._state else 0

    def _read_rev(self, rev: int) -> int:
        """The revision a read at ``rev`` (0: current) runs at, or the error it gets."""
        current = self.current_rev()
        if rev == 0:
            return current
        if rev > current:
            raise errors.FutureRevision(rev, current)
        compacted = self.compacted_rev()
        if rev < compacted:
            raise errors.Compacted(rev, compacted)
        return rev

    # -- writes ---------------------------------------------------------------------------

    async def _write(self, apply: writer.Apply) -> Any:
        return await self._running().writer.submit(apply)

    async def create(self, key: str, value: bytes) -> int:
        rev: int = await self._write(functools.partial(ops.create, key=key, value=value))
        return rev

    async def update(self, key: str, value: bytes, expected_rev: int) -> int:
        apply = functools.partial(ops.update, key=key, value=value, expected_rev=expected_rev)
        rev: int = await self._write(apply)
        return rev

    async def delete(self, key: str, expected_rev: int = 0) -> backend.KeyValue:
        kv: backend.KeyValue = await self._write(
            functools.partial(ops.delete, key=key, expected_rev=expected_rev)
        )
        return kv

    # -- reads ----------------------------------------------------------------------------

    async def get(self, key: str, rev: int = 0) -> backend.KeyValue:
        at = self._read_rev(rev)
        return await self._running().readers.run(functools.partial(reads.get_at, key=key, rev=at))

    async def list(
        self, prefix: str, rev: int = 0, limit: int = 0, start_after: str = ""
    ) -> backend.ListResult:
        at = self._read_rev(rev)
        query = functools.partial(
            reads.list_at, prefix=prefix, rev=at, limit=limit, start_after=start_after
        )
        kvs, more = await self._running().readers.run(query)
        return backend.ListResult(revision=at, kvs=kvs, more=more)

    # -- watch ----------------------------------------------------------------------------

    def watch(self, prefix: str, after_rev: int) -> AsyncIterator[backend.Event]:
        return self._watch(prefix, after_rev)

    async def _watch(self, prefix: str, after_rev: int) -> AsyncIterator[backend.Event]:
        state = self._running()
        compacted = self.compacted_rev()
        if after_rev < compacted:
            raise errors.Compacted(after_rev, compacted)
        # Registering and publishing both happen on the event loop: every event above
        # start_rev reaches the watcher's queue, everything up to it is in the table.
        watcher = state.hub.register(prefix)
        last = after_rev
        try:
            async for event in self._history(state, watcher, after_rev):
                yield event
                last = event.revision
            while batch := await watcher.next_batch(last):
                for event in batch:
                    if event.revision > last:
                        yield event
                        last = event.revision
        finally:
            state.hub.unregister(watcher)

    async def _history(
        self, state: _Running, watcher: watchhub.Watcher, after: int
    ) -> AsyncIterator[backend.Event]:
        cursor, upto = after, watcher.start_rev
        while cursor < upto and not watcher.closed:
            query = functools.partial(
                reads.history, prefix=watcher.prefix, after=cursor, upto=upto, limit=HISTORY_PAGE
            )
            page = await state.readers.run(query)
            for event in page:
                yield event
            if len(page) < HISTORY_PAGE:
                return
            cursor = page[-1].revision

    # -- compaction -----------------------------------------------------------------------

    async def compact(self, rev: int) -> None:
        """Forget history at or below ``rev``, a chunk of revisions per writer transaction."""
        current = self.current_rev()
        if rev > current:
            raise errors.FutureRevision(rev, current)
        async with self._compact_lock:
            low = self.compacted_rev()
            if rev <= low:
                return
            while low < rev:
                high = min(low + self._compact_batch, rev)
                deleted: int = await self._write(
                    functools.partial(ops.compact_chunk, low=low, high=high)
                )
                self.compacted_rows += deleted
                low = high
            await self._running().writer.submit(_reclaim_space, in_tx=False)

    async def compact_history(self) -> int:
        """Compact what the history window allows (what the background task runs)."""
        goal = compaction.target(
            current_rev=self.current_rev(),
            now=self._clock(),
            clock=self._revclock,
            window_seconds=self._window_seconds,
            window_revisions=self._window_revisions,
        )
        if goal > self.compacted_rev():
            await self.compact(goal)
        return self.compacted_rev()

    async def _compact_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._compact_wake.wait(), self._compact_interval)
            self._compact_wake.clear()
            try:
                await self.compact_history()
            except Exception:  # keep compacting later; a failed chunk changed nothing
                log.exception("background compaction failed")

    def _on_commit(self, rev: int, written: int) -> None:
        """Writer thread, after each commit: note the time, maybe wake the compactor."""
        self._revclock.note(self._clock(), rev)
        self._writes_since_compact += written
        if self._writes_since_compact < self._compact_every_writes or self._state is None:
            return
        self._writes_since_compact = 0
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._state.writer.loop.call_soon_threadsafe(self._compact_wake.set)

    # -- introspection (tests, benchmarks) ------------------------------------------------

    @property
    def stats(self) -> writer.WriterStats:
        return self._running().writer.stats

    def file_sizes(self) -> tuple[int, int]:
        """(database bytes, -wal bytes) on disk right now."""
        return schema.file_sizes(self.path)


def _reclaim_space(batch: ops.Batch) -> None:
    """Writer thread, outside a transaction: give back surplus free pages, shrink the WAL.

    Free pages are reused by later writes anyway (under steady churn, compaction frees about
    what the next writes need), so free pages up to a quarter of the file are kept; only a
    larger surplus (after a burst or a mass delete) goes back to the filesystem, a bounded
    number of pages per run.
    """
    conn = batch.conn
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    surplus = free - pages // 4
    if surplus > 256:
        # executescript steps the pragma to completion; execute() would free a single page.
        conn.executescript(f"PRAGMA incremental_vacuum({min(surplus, MAX_VACUUM_PAGES)});")
    _truncate_wal(conn)


def _truncate_wal(conn: sqlite3.Connection) -> None:
    # TRUNCATE waits for readers on old snapshots; a short busy timeout keeps the writer
    # from stalling behind a long read (the checkpoint is simply tried again next time).
    conn.execute("PRAGMA busy_timeout = 50")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute("PRAGMA busy_timeout = 5000")
