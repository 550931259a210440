"""In-process fan-out of committed events to watchers, with a bound on how far one may lag.

The backend's writer calls ``publish`` on the event loop once per committed batch; every
registered watcher whose prefix matches gets the events appended to its own queue and is
woken. Nobody polls. A watcher that stops reading cannot slow the writer down: when its queue
holds more than ``limit`` events it is cut off (its queue is dropped and its iterator raises
``WatchTooSlow``, a kind of Compacted), and the consumer re-lists, as it would after a 410.

``dispatched_rev`` is the highest revision handed to watchers. A new watcher registered at
that moment gets every later event live, so a backend reads history up to exactly that
revision from its table: no gap and no duplicate between the two phases.
"""

from __future__ import annotations

import asyncio
import collections
import enum

from kybern.storage import backend, errors

DEFAULT_QUEUE_LIMIT = 10_000


class WatchTooSlow(errors.Compacted):
    """The watcher fell too far behind the live stream; re-list, then watch again."""

    def __init__(self, last_rev: int, current_rev: int, limit: int) -> None:
        super().__init__(last_rev, current_rev)
        self.args = (
            f"watcher fell more than {limit} events behind after revision {last_rev}"
            f" (current {current_rev}); re-list and watch again",
        )


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    TOO_SLOW = "too_slow"


class Watcher:
    """One consumer's queue of live events for one key prefix."""

    def __init__(self, prefix: str, *, start_rev: int, limit: int) -> None:
        self.prefix = prefix
        self.start_rev = start_rev  # every event above this revision reaches this queue
        self._limit = limit
        self._queue: collections.deque[backend.Event] = collections.deque()
        self._wake = asyncio.Event()
        self._state = _State.OPEN
        self._cut_at = 0

    @property
    def closed(self) -> bool:
        return self._state is not _State.OPEN

    def offer(self, events: list[backend.Event]) -> None:
        if self._state is not _State.OPEN:
            return
        self._queue.extend(e for e in events if e.kv.key.startswith(self.prefix))
        if len(self._queue) > self._limit:
            self._state = _State.TOO_SLOW
            self._cut_at = events[-1].revision
            self._queue.clear()
        if self._queue or self._state is not _State.OPEN:
            self._wake.set()

    def close(self) -> None:
        if self._state is _State.OPEN:
            self._state = _State.CLOSED
        self._wake.set()

    async def next_batch(self, last_rev: int) -> list[backend.Event]:
        """Wait for queued events and take them all; [] once the hub is closed.

        ``last_rev`` is the last revision the consumer saw, for the WatchTooSlow message.
        """
        while not self._queue and self._state is _State.OPEN:
            self._wake.clear()
            await self._wake.wait()
        if self._state is _State.TOO_SLOW:
            raise WatchTooSlow(last_rev, self._cut_at, self._limit)
        batch = list(self._queue)
        self._queue.clear()
        return batch


class WatchHub:
    """The set of live watchers of one backend. Event-loop only (not thread-safe)."""

    def __init__(self, *, dispatched_rev: int, limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.dispatched_rev = dispatched_rev
        self._limit = limit
        self._watchers: set[Watcher] = set()
        self._closed = False

    def register(self, prefix: str) -> Watcher:
        watcher = Watcher(prefix, start_rev=self.dispatched_rev, limit=self._limit)
        if self._closed:
            watcher.close()
        else:
            self._watchers.add(watcher)
        return watcher

    def unregister(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, events: list[backend.Event]) -> None:
        if not events:
            return
        self.dispatched_rev = events[-1].revision
        for watcher in self._watchers:
            watcher.offer(events)

    def close(self) -> None:
        self._closed = True
        for watcher in self._watchers:
            watcher.close()
        self._watchers.clear()

    def __len__(self) -> int:
        return len(self._watchers)
