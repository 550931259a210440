"""The watch cache: every stored object in memory, fed by one storage watch.

The API server lists the whole ``/registry/`` prefix once at start, then follows one watch on
the backend. Lists and gets are answered from here (after waiting until the cache has seen
the store's current revision, which makes them consistent reads); watches replay recent events
from a per-resource ring buffer and then follow live events. Each event is encoded once per
API version and shared by every watcher of that version (kybern.apiserver.watch).

The ring buffer also serves paged lists: each event keeps the object as it was before it, so
the collection as of an earlier revision is the current objects with the keys changed since
put back (kybern.apiserver.listing). Keys are kept sorted as they come and go, so a page is
found by bisection. Watchers that select pods by ``spec.nodeName=<node>`` (every kubelet)
are grouped by node, so an event is offered only to its node's watchers (``TRIGGERS``).

Cached objects are shared and must be treated as immutable: copy before changing one.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from kybern.storage import backend as storage_backend
from kybern.storage import errors as storage_errors

log = logging.getLogger(__name__)

PREFIX = "/registry/"
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
BOOKMARK = "BOOKMARK"
WAIT_TIMEOUT = 3.0
# How long a single object's consistent read (a GET, or the read before a write) waits for
# the cache before reading the store instead: Kubernetes serves those from etcd outright.
OBJECT_WAIT_TIMEOUT = 0.25
BOOKMARK_INTERVAL = 60.0  # how often watchers that allow bookmarks get one


def object_key(resource: str, namespace: str, name: str) -> str:
    """The storage key of an object: /registry/<resource>/[<namespace>/]<name>."""
    if namespace:
        return f"{PREFIX}{resource}/{namespace}/{name}"
    return f"{PREFIX}{resource}/{name}"


def collection_prefix(resource: str, namespace: str = "") -> str:
    if namespace:
        return f"{PREFIX}{resource}/{namespace}/"
    return f"{PREFIX}{resource}/"


def split_key(key: str) -> tuple[str, str, str]:
    """-> (resource, namespace, name); namespace is '' for cluster-scoped keys."""
    parts = key[len(PREFIX) :].split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], "", parts[-1]


def decode(kv: storage_backend.KeyValue, revision: int | None = None) -> dict[str, Any]:
    """A stored value as an object whose resourceVersion is its revision."""
    obj: dict[str, Any] = orjson.loads(kv.value)
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = str(revision if revision is not None else kv.mod_revision)
    return obj


@dataclass(slots=True)
class CachedEvent:
    """One change. ``prev`` is the object as it was before the change (None for ADDED): for
    MODIFIED it drives selector transitions, for MODIFIED and DELETED it lets a paged list
    see the collection as it was at an earlier revision (``ResourceCache.changes_after``)."""

    type: str
    key: str
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    revision: int
    encoded: dict[Any, bytes] = field(default_factory=dict)


Matcher = Callable[[dict[str, Any]], bool]


class Watcher:
    """One client's watch: a bounded queue the cache pushes matching events into."""

    def __init__(
        self,
        namespace: str,
        matches: Matcher,
        capacity: int,
        *,
        bookmarks: bool = False,
        trigger: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.bookmarks = bookmarks
        self.matches = matches
        # The value the resource's trigger field must have (see TRIGGERS), when the
        # watcher's selector requires one: the cache then offers it only such events.
        self.trigger = trigger
        self.queue: asyncio.Queue[CachedEvent | None] = asyncio.Queue()
        self.capacity = capacity
        self.overflowed = False

    def offer(self, event: CachedEvent) -> None:
        if self.overflowed:
            return
        if self.namespace and event.namespace != self.namespace:
            return
        filtered = filter_event(event, self.matches)
        if filtered is None:
            return
        if self.queue.qsize() >= self.capacity:
            # A watcher this far behind would hold memory without bound: end it, and the
            # client re-lists (what Kubernetes does with a blocked watcher).
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(filtered)


def filter_event(event: CachedEvent, matches: Matcher) -> CachedEvent | None:
    """Apply a selector to an event as Kubernetes does: an object that stops matching is
    DELETED for this watcher, one that starts matching is ADDED."""
    now = matches(event.obj)
    before = event.prev is not None and matches(event.prev)
    if event.type == ADDED:
        return event if now else None
    if event.type == DELETED:
        return event if now else None
    if now and before:
        return event
    if now:
        return CachedEvent(ADDED, event.key, event.namespace, event.obj, None, event.revision)
    if before:
        gone = dict(event.prev or {})
        gone["metadata"] = dict(gone.get("metadata", {}), resourceVersion=str(event.revision))
        return CachedEvent(DELETED, event.key, event.namespace, gone, None, event.revision)
    return None


def _node_name(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("spec") or {}).get("nodeName") or "") if obj else ""


# Per resource, a field that watchers often select by exact value, and how to read it from a
# stored object: Kubernetes' "indexed triggers". Every kubelet watches its node's pods
# (``spec.nodeName=<node>``); with a watcher set per value, a pod event costs the watchers
# of its node, not one selector test per node in the cluster.
TRIGGERS: dict[str, tuple[str, Callable[[dict[str, Any] | None], str]]] = {
    "pods": ("spec.nodeName", _node_name),
}


class ResourceCache:
    """The objects and recent events of one storage resource."""

    def __init__(self, resource: str, start_revision: int, capacity: int) -> None:
        self.resource = resource
        self.objects: dict[str, dict[str, Any]] = {}
        self._sorted: list[str] | None = None
        self.events: collections.deque[CachedEvent] = collections.deque(maxlen=capacity)
        # Every event with a revision above this is in `events`.
        self.window_start = start_revision
        self.watchers: set[Watcher] = set()  # all of them (bookmarks, shutdown)
        self._untriggered: set[Watcher] = set()
        self._triggered: dict[str, set[Watcher]] = {}
        trigger = TRIGGERS.get(resource)
        self.trigger_field = trigger[0] if trigger else None
        self._trigger_value = trigger[1] if trigger else None
        self._index: dict[str, set[str]] | None = None  # trigger value -> keys
        self._indexed = 0  # len(objects) when the index was last in step

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)
        if watcher.trigger is None or self._trigger_value is None:
            self._untriggered.add(watcher)
        else:
            self._triggered.setdefault(watcher.trigger, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        self._untriggered.discard(watcher)
        if watcher.trigger is not None:
            same = self._triggered.get(watcher.trigger)
            if same is not None:
                same.discard(watcher)
                if not same:
                    del self._triggered[watcher.trigger]

    def _offer(self, event: CachedEvent) -> None:
        for watcher in tuple(self._untriggered):
            watcher.offer(event)
        if self._triggered and self._trigger_value is not None:
            # A watcher selecting value V can only see an event whose object has V now or
            # had it before (a DELETED or a selector transition): offer it to those two sets.
            now, before = self._trigger_value(event.obj), self._trigger_value(event.prev)
            for watcher in tuple(self._triggered.get(now, ())):
                watcher.offer(event)
            if before != now:
                for watcher in tuple(self._triggered.get(before, ())):
                    watcher.offer(event)

    def sorted_keys(self) -> list[str]:
        """Every key, sorted. Built once, then kept sorted by ``apply`` (an insort or a
        delete per created or deleted key) rather than re-sorted after every change: a
        LIST after a pod was created must not sort 150,000 keys again. Callers that fill
        ``objects`` directly (start-up, relist, tests) change its size, which rebuilds it."""
        keys = self._sorted
        if keys is None or len(keys) != len(self.objects):
            keys = self._sorted = sorted(self.objects)
        return keys

    def key_range(self, prefix: str, start_after: str = "") -> tuple[list[str], int, int]:
        """(sorted keys, lo, hi): keys[lo:hi] are those under prefix after start_after."""
        keys = self.sorted_keys()
        lo = (
            bisect.bisect_right(keys, start_after)
            if start_after > prefix
            else bisect.bisect_left(keys, prefix)
        )
        # Every key under the prefix sorts below the prefix with its last character bumped.
        hi = (
            bisect.bisect_left(keys, prefix[:-1] + chr(ord(prefix[-1]) + 1), lo)
            if prefix
            else len(keys)
        )
        return keys, lo, max(lo, hi)

    def keys_in(self, prefix: str, start_after: str = "") -> Iterator[str]:
        keys = self.sorted_keys()
        lo = (
            bisect.bisect_right(keys, start_after)
            if start_after > prefix
            else bisect.bisect_left(keys, prefix)
        )
        for i in range(lo, len(keys)):
            key = keys[i]
            if not key.startswith(prefix):
                return
            yield key

    def apply(self, event: CachedEvent) -> None:
        before = self.objects.get(event.key)
        if event.type == DELETED:
            if self.objects.pop(event.key, None) is not None:
                self._unsort(event.key)
        else:
            if before is None:
                self._insort(event.key)
            self.objects[event.key] = event.obj
        self._reindex(event, before)
        if len(self.events) == self.events.maxlen:
            self.window_start = self.events[0].revision
        self.events.append(event)
        self._offer(event)

    def indexed(self, value: str) -> set[str]:
        """The keys whose trigger field (``TRIGGERS``) has ``value`` now: what a kubelet's
        LIST of its node's pods needs, without testing every pod of the cluster. Built on
        first use, then kept by ``apply``; rebuilt when ``objects`` was filled directly."""
        index = self._index
        if index is None or self._indexed != len(self.objects):
            index = self._build_index()
        return index.get(value, set())

    def _build_index(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        value_of = self._trigger_value
        if value_of is not None:
            for key, obj in self.objects.items():
                index.setdefault(value_of(obj), set()).add(key)
        self._index, self._indexed = index, len(self.objects)
        return index

    def _reindex(self, event: CachedEvent, before: dict[str, Any] | None) -> None:
        index, value_of = self._index, self._trigger_value
        if index is None or value_of is None:
            return
        if self._indexed != len(self.objects) + (event.type == DELETED) - (before is None):
            self._index = None  # out of step (filled directly): rebuilt on next use
            return
        if before is not None:
            index.get(value_of(before), set()).discard(event.key)
        if event.type != DELETED:
            index.setdefault(value_of(event.obj), set()).add(event.key)
        self._indexed = len(self.objects)

    def _insort(self, key: str) -> None:
        keys = self._sorted
        if keys is not None and len(keys) == len(self.objects):
            bisect.insort(keys, key)
        else:
            self._sorted = None

    def _unsort(self, key: str) -> None:
        keys = self._sorted
        if keys is None:
            return
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key and len(keys) == len(self.objects) + 1:
            del keys[i]
        else:
            self._sorted = None

    def events_after(self, revision: int) -> list[CachedEvent] | None:
        """Buffered events newer than revision, or None when the window no longer covers it.
        Walks back from the newest event: the cost is the number of events returned."""
        if revision < self.window_start:
            return None
        newer: list[CachedEvent] = []
        for event in reversed(self.events):
            if event.revision <= revision:
                break
            newer.append(event)
        newer.reverse()
        return newer

    def changes_after(
        self, revision: int, prefix: str, start_after: str = ""
    ) -> dict[str, CachedEvent] | None:
        """The first event after ``revision`` of every key under prefix after start_after:
        with it, a key's state at ``revision`` is known (absent if that event is ADDED,
        else the event's ``prev``); keys without one are as they are now. None when the
        window no longer covers the revision."""
        events = self.events_after(revision)
        if events is None:
            return None
        first: dict[str, CachedEvent] = {}
        for event in events:
            key = event.key
            if key not in first and key.startswith(prefix) and key > start_after:
                first[key] = event
        return first


class WatchCache:
    """All resources' caches, kept in step with the backend by one watch task."""

    def __init__(self, backend: storage_backend.Backend, *, capacity: int = 10_000) -> None:
        self.backend = backend
        self.capacity = capacity
        self.revision = 0
        self._resources: dict[str, ResourceCache] = {}
        self._start_revision = 0
        # Readers waiting for the cache to reach a revision: a heap of (revision, seq,
        # future), so each applied event wakes the due ones without scanning them all.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        # Cached objects replaced (updated, deleted or re-listed), ever: gctuning counts them
        # because the cache's size alone misses the objects stored after a heap freeze in
        # place of older ones.
        self._replaced = 0

    def resource(self, name: str) -> ResourceCache:
        cache = self._resources.get(name)
        if cache is None:
            cache = ResourceCache(name, max(self.revision, self._start_revision), self.capacity)
            self._resources[name] = cache
        return cache

    async def start(self) -> None:
        result = await self.backend.list(PREFIX)
        kvs = list(result.kvs)
        while result.more:
            result = await self.backend.list(PREFIX, rev=result.revision, start_after=kvs[-1].key)
            kvs.extend(result.kvs)
        self._start_revision = self.revision = result.revision
        for kv in kvs:
            resource, _, _ = split_key(kv.key)
            self.resource(resource).objects[kv.key] = decode(kv)
        self._tasks = [
            asyncio.create_task(self._follow(), name="watch-cache"),
            asyncio.create_task(self._bookmarks(), name="watch-bookmarks"),
        ]
        self.ready.set()

    def object_count(self) -> int:
        return sum(len(cache.objects) for cache in self._resources.values())

    def replaced_count(self) -> int:
        return self._replaced

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for cache in self._resources.values():
            for watcher in tuple(cache.watchers):
                watcher.queue.put_nowait(None)

    async def _follow(self) -> None:
        while True:
            try:
                async for event in self.backend.watch(PREFIX, self.revision):
                    self._apply(event)
                    if self._waiters and self._waiters[0][0] <= self.revision:
                        self._wake()
                return
            except storage_errors.Compacted:
                log.error("watch cache fell behind the store's compaction; re-listing")
                await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch cache: backend watch failed; restarting it")
                await asyncio.sleep(0.1)

    async def _bookmarks(self) -> None:
        """Every BOOKMARK_INTERVAL, tell watchers that asked for bookmarks how far the cache
        has got, so they can resume from there without replaying."""
        while True:
            await asyncio.sleep(BOOKMARK_INTERVAL)
            mark = CachedEvent(BOOKMARK, "", "", {}, None, self.revision)
            for cache in self._resources.values():
                for watcher in cache.watchers:
                    if watcher.bookmarks and not watcher.overflowed:
                        watcher.queue.put_nowait(mark)

    async def _relist(self) -> None:
        result = await self.backend.list(PREFIX)
        current = {kv.key: kv for kv in result.kvs}
        for cache in self._resources.values():
            cache.window_start = result.revision
            cache.events.clear()
            for watcher in tuple(cache.watchers):
                watcher.overflowed = True
                watcher.queue.put_nowait(None)
            self._replaced += len(cache.objects)
            cache.objects.clear()
            cache._sorted = None
            cache._index = None
        for key, kv in current.items():
            self.resource(split_key(key)[0]).objects[key] = decode(kv)
        self.revision = result.revision

    def _apply(self, event: storage_backend.Event) -> None:
        resource, namespace, _ = split_key(event.kv.key)
        revision = event.revision
        cache = self.resource(resource)
        prev_obj = cache.objects.get(event.kv.key)
        if event.type is storage_backend.EventType.DELETE:
            obj = decode(event.prev or event.kv, revision)
            cached = CachedEvent(DELETED, event.kv.key, namespace, obj, prev_obj, revision)
        else:
            obj = decode(event.kv)
            kind = ADDED if event.type is storage_backend.EventType.CREATE else MODIFIED
            cached = CachedEvent(kind, event.kv.key, namespace, obj, prev_obj, revision)
        if prev_obj is not None:
            self._replaced += 1
        cache.apply(cached)
        self.revision = revision

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self.revision:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    async def wait_for(self, revision: int, within: float = WAIT_TIMEOUT) -> None:
        """Wait until the cache has applied `revision` (a consistent read's precondition);
        TimeoutError after `within` seconds."""
        if self.revision >= revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), future))
        async with asyncio.timeout(within):
            await future

    async def sync(self, within: float = WAIT_TIMEOUT) -> int:
        """Wait for the store's current revision; returns it."""
        current = self.backend.current_rev()
        await self.wait_for(current, within)
        return max(current, self.revision)
