"""Group commit: the one thread that writes to the sqlite database.

Callers on the event loop ``submit`` an operation (a function of a ``sqlite_ops.Batch``) and
await a future. The writer thread takes everything queued (up to ``max_batch``), applies it in
ONE transaction with ONE commit (one fsync of the WAL), and only then hands the results back
to the loop: first the batch's events to ``publish`` (the watchers), then each caller's own
result or error. A future is resolved only after its commit is durable, which is what makes
an acknowledged write survive kill -9.

While one commit's fsync is in flight, new operations pile up in the queue and go out together
in the next commit: the busier the store, the bigger the batches, without any timer.

If SQLite itself fails in the middle of a batch (disk full, I/O error), the whole transaction
is rolled back and the operations are retried one per transaction, so one bad operation fails
alone. Precondition failures (KeyExists, Conflict, ...) write nothing and never abort a batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kybern.storage import backend, errors
from kybern.storage import sqlite_ops as ops

log = logging.getLogger(__name__)

Apply = Callable[[ops.Batch], Any]
Publish = Callable[[list[backend.Event]], None]
OnCommit = Callable[[int, int], None]  # (committed revision, revisions written), writer thread


@dataclass(slots=True)
class WriterStats:
    """Counters for tests and benchmarks: commits < ops is group commit at work."""

    commits: int = 0
    ops: int = 0
    largest_batch: int = 0
    rollbacks: int = 0


@dataclass(slots=True)
class _Pending:
    apply: Apply
    future: asyncio.Future[Any]
    in_tx: bool  # False for maintenance (checkpoint, vacuum) that must run outside a transaction


class Writer:
    """Owns the write connection and its thread; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        rev: int,
        compacted_rev: int,
        loop: asyncio.AbstractEventLoop,
        publish: Publish,
        on_commit: OnCommit,
        max_batch: int = 1000,
    ) -> None:
        self._conn = conn
        self.loop = loop
        self._publish = publish
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kybern-sqlite-writer", daemon=True)
        self._stopping = False
        self.rev = rev  # last committed revision; written by the writer thread only
        self.compacted_rev = compacted_rev
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    def submit(self, apply: Apply, *, in_tx: bool = True) -> asyncio.Future[Any]:
        """Queue an operation; the future resolves once it is committed (or failed)."""
        if self._stopping:
            raise RuntimeError("storage backend is closed")
        future: asyncio.Future[Any] = self.loop.create_future()
        self._queue.put(_Pending(apply, future, in_tx))
        return future

    async def stop(self) -> None:
        """Finish everything already queued, then close the connection and end the thread."""
        if not self._stopping:
            self._stopping = True
            self._queue.put(None)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (pending := self._next_batch()) is not None:
                self._process(pending)
        finally:
            self._conn.close()

    def _next_batch(self) -> list[_Pending] | None:
        """Block for one operation, then take whatever else is already queued."""
        first = self._queue.get()
        if first is None:
            return None
        pending = [first]
        while len(pending) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            pending.append(item)
        return pending

    def _process(self, pending: list[_Pending]) -> None:
        in_tx = [p for p in pending if p.in_tx]
        try:
            if in_tx:
                self._commit_batch(in_tx)
            for p in pending:
                if not p.in_tx:
                    self._run_maintenance(p)
        except Exception as exc:  # never let the writer thread die: fail the callers instead
            log.exception("sqlite writer failed")
            self._post(pending, [exc] * len(pending), [])

    def _commit_batch(self, pending: list[_Pending]) -> None:
        batch = ops.Batch(self._conn, self.rev)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply(batch, p) for p in pending]
            self._conn.execute("COMMIT")
        except Exception as exc:  # SQLite failed (or a bug): nothing of this batch happened
            self._rollback()
            if len(pending) == 1:
                self._post(pending, [exc], [])
                return
            for p in pending:  # isolate the operation that breaks SQLite
                self._commit_batch([p])
            return
        self._committed(batch, pending, outcomes)

    def _committed(self, batch: ops.Batch, pending: list[_Pending], outcomes: list[Any]) -> None:
        written = batch.rev - self.rev
        self.rev = batch.rev
        if batch.compacted_rev is not None:
            self.compacted_rev = batch.compacted_rev
        self.stats.commits += 1
        self.stats.ops += len(pending)
        self.stats.largest_batch = max(self.stats.largest_batch, len(pending))
        try:
            self._on_commit(self.rev, written)
        except Exception:  # bookkeeping only: the batch is durable, its callers must hear so
            log.exception("sqlite writer on_commit hook failed")
        self._post(pending, outcomes, batch.events)

    @staticmethod
    def _apply(batch: ops.Batch, pending: _Pending) -> Any:
        try:
            return pending.apply(batch)
        except errors.StorageError as exc:
            return exc

    def _run_maintenance(self, pending: _Pending) -> None:
        try:
            outcome = pending.apply(ops.Batch(self._conn, self.rev))
        except sqlite3.Error as exc:
            outcome = exc
        self._post([pending], [outcome], [])

    def _rollback(self) -> None:
        self.stats.rollbacks += 1
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _post(
        self, pending: list[_Pending], outcomes: list[Any], events: list[backend.Event]
    ) -> None:
        try:
            self.loop.call_soon_threadsafe(self._resolve, pending, outcomes, events)
        except RuntimeError:  # the loop is gone: nobody is waiting any more
            pass

    # -- event loop -----------------------------------------------------------------------

    def _resolve(
        self, pending: list[_Pending], outcomes: list[Any], events: list[backend.Event]
    ) -> None:
        if events:
            self._publish(events)
        for p, outcome in zip(pending, outcomes, strict=True):
            if p.future.done():  # the caller was cancelled; the write happened anyway
                continue
            if isinstance(outcome, BaseException):
                p.future.set_exception(outcome)
            else:
                p.future.set_result(outcome)
