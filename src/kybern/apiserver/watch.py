"""WATCH: newline-delimited JSON events streamed from the watch cache.

A watch from resourceVersion N replays the cache's buffered events after N, then follows live
events; when N is older than the buffer it follows the store's own watch (history from the
store), and when the store has compacted N away the client gets an ERROR event with a 410
Status so it re-lists. A watch without a resourceVersion (or "0") first sends the current
objects as synthetic ADDED events. Each event is encoded once per API version and shared by
every watcher of that version.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from kybern.api import fields, kinds
from kybern.apiserver import errors, listing, query, registry, tables, watchcache
from kybern.storage import backend as storage_backend
from kybern.storage import errors as storage_errors

BATCH = 256  # events written together at most
DEFAULT_TIMEOUT = 1800
WATCHER_CAPACITY = 10_000


def encode_event(
    info: kinds.ResourceInfo,
    event: watchcache.CachedEvent,
    encoder: tables.WatchEncoder | None = None,
) -> bytes:
    if encoder is not None:  # Table / PartialObjectMetadata: its own per-form cache key
        return encoder.event(event)
    cache_key = info.api_version
    line = event.encoded.get(cache_key)
    if line is None:
        obj = registry.to_version(info, event.obj)
        line = orjson.dumps({"type": event.type, "object": obj}) + b"\n"
        event.encoded[cache_key] = line
    return line


def bookmark(
    info: kinds.ResourceInfo,
    revision: int,
    *,
    initial_end: bool = False,
    encoder: tables.WatchEncoder | None = None,
) -> bytes:
    if encoder is not None:
        return encoder.bookmark(revision, initial_end=initial_end)
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


class WatchStream:
    """One watch request: what to replay, then the live queue."""

    def __init__(
        self,
        reg: registry.Registry,
        info: kinds.ResourceInfo,
        namespace: str,
        opts: query.ListOptions,
    ) -> None:
        self.reg = reg
        self.info = info
        self.namespace = namespace if info.namespaced else ""
        self.opts = opts
        match = listing.matcher(info, opts.label_selector, opts.field_selector)
        self.accept = listing.versioned_matcher(info, match)
        self.resource = reg.cache.resource(info.storage_resource)
        self.watcher = watchcache.Watcher(
            self.namespace,
            self.accept,
            WATCHER_CAPACITY,
            bookmarks=opts.allow_bookmarks,
            trigger=_trigger(self.resource, opts.field_selector),
        )
        self.encoder: tables.WatchEncoder | None = None  # None: plain JSON events

    def snapshot(self) -> list[watchcache.CachedEvent] | None:
        """Register the watcher and return the events to send first, atomically (no await
        in between, so no event is missed or sent twice). None: the cache's window is too
        short for the requested resourceVersion."""
        rv = self.opts.resource_version
        if rv is None or rv == 0:
            replay = self._initial_events()
        else:
            buffered = self.resource.events_after(rv)
            if buffered is None:
                return None
            replay = [e for e in (watchcache.filter_event(ev, self.accept) for ev in buffered) if e]
            replay = [e for e in replay if not self.namespace or e.namespace == self.namespace]
        self.resource.add_watcher(self.watcher)
        return replay

    def _initial_events(self) -> list[watchcache.CachedEvent]:
        prefix = watchcache.collection_prefix(self.info.storage_resource, self.namespace)
        events = []
        for key in self.resource.keys_in(prefix):
            obj = self.resource.objects[key]
            if self.accept(obj):
                _, ns, _ = watchcache.split_key(key)
                events.append(watchcache.CachedEvent(watchcache.ADDED, key, ns, obj, None, 0))
        return events

    def close(self) -> None:
        self.resource.remove_watcher(self.watcher)


def _trigger(resource: watchcache.ResourceCache, field_selector: str) -> str | None:
    """The value the selector requires of the resource's trigger field (a kubelet's
    ``spec.nodeName=<node>``), if it requires one: the cache offers such a watcher only the
    events of objects with that value."""
    if not field_selector or resource.trigger_field is None:
        return None
    return fields.parse(field_selector).requires_exact_match(resource.trigger_field)


INITIAL_END = "initial-events-end"  # the key of the bookmark that ends the initial events
ERROR = "ERROR"


async def open_stream(
    reg: registry.Registry, info: kinds.ResourceInfo, namespace: str, opts: query.ListOptions
) -> tuple[WatchStream, list[watchcache.CachedEvent] | None]:
    """A registered watch and what to replay first (None: follow the store's history)."""
    if opts.resource_version is None:
        await reg.cache.sync()
    elif opts.resource_version > 0:
        await listing._wait(reg.cache, opts.resource_version)
    stream = WatchStream(reg, info, namespace, opts)
    return stream, stream.snapshot()


def deadline_for(opts: query.ListOptions) -> float:
    """When the watch ends: timeoutSeconds, else Kubernetes' randomised 30-60 minutes."""
    timeout = opts.timeout_seconds or DEFAULT_TIMEOUT * (1 + random.random())
    return asyncio.get_running_loop().time() + timeout


async def batches(
    reg: registry.Registry,
    stream: WatchStream,
    replay: list[watchcache.CachedEvent] | None,
    deadline: float,
) -> AsyncIterator[list[watchcache.CachedEvent]]:
    """The watch as batches of events, for the HTTP stream and the in-process API alike:
    replayed events, the initial-events-end bookmark when asked, then everything queued at
    each wake-up (periodic BOOKMARKs included), until the deadline or the cache ends the
    watcher. A watch older than the cache's window follows the store's history instead and
    ends with an ERROR event (410) when that history is compacted."""
    if replay is None:
        async for event in _store_events(reg, stream, deadline):
            yield [event]
        return
    for start in range(0, len(replay), BATCH):
        yield replay[start : start + BATCH]
    if stream.opts.allow_bookmarks and stream.opts.send_initial_events:
        yield [
            watchcache.CachedEvent(
                watchcache.BOOKMARK, INITIAL_END, "", {}, None, reg.cache.revision
            )
        ]
    queue = stream.watcher.queue
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                first = await queue.get()
        except TimeoutError:
            return
        batch = [first]
        while not queue.empty() and len(batch) < BATCH:
            batch.append(queue.get_nowait())
        if None in batch:  # the cache ended this watcher (overflow or shutdown)
            events = batch[: batch.index(None)]
            if events:
                yield events  # type: ignore[misc]
            return
        yield batch  # type: ignore[misc]


async def _store_events(
    reg: registry.Registry, stream: WatchStream, deadline: float
) -> AsyncIterator[watchcache.CachedEvent]:
    stream.close()
    rv = stream.opts.resource_version or 0
    prefix = watchcache.collection_prefix(stream.info.storage_resource, stream.namespace)
    raw = reg.backend.watch(prefix, rv)
    events = _cached_events(raw)
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await anext(events)
            except (TimeoutError, StopAsyncIteration):
                return
            filtered = watchcache.filter_event(event, stream.accept)
            if filtered is not None:
                yield filtered
    except storage_errors.Compacted as exc:
        status = errors.from_exception(exc).status()
        yield watchcache.CachedEvent(ERROR, "", "", status, None, 0)
    finally:
        with contextlib.suppress(Exception):
            await raw.aclose()  # type: ignore[attr-defined]


def render(
    info: kinds.ResourceInfo, event: watchcache.CachedEvent, encoder: tables.WatchEncoder | None
) -> bytes:
    """One event as a line of the HTTP watch stream."""
    if event.type == watchcache.BOOKMARK:
        return bookmark(info, event.revision, initial_end=event.key == INITIAL_END, encoder=encoder)
    if event.type == ERROR:
        return orjson.dumps({"type": ERROR, "object": event.obj}) + b"\n"
    return encode_event(info, event, encoder)


async def serve(
    request: web.Request,
    reg: registry.Registry,
    info: kinds.ResourceInfo,
    namespace: str,
    opts: query.ListOptions,
    output: tables.Output = tables.PLAIN,
) -> web.StreamResponse:
    stream, replay = await open_stream(reg, info, namespace, opts)
    if output.transformed:
        stream.encoder = tables.WatchEncoder(info, output)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        # Everything queued goes out in one write: one TLS record for a burst of events
        # instead of one per event, which is what lets 1,000 watchers keep up.
        async for batch in batches(reg, stream, replay, deadline_for(opts)):
            await response.write(b"".join(render(info, e, stream.encoder) for e in batch))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        stream.close()
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


async def _cached_events(
    events: AsyncIterator[storage_backend.Event],
) -> AsyncIterator[watchcache.CachedEvent]:
    async for event in events:
        _, namespace, _ = watchcache.split_key(event.kv.key)
        prev = watchcache.decode(event.prev) if event.prev else None
        if event.type is storage_backend.EventType.DELETE:
            obj = watchcache.decode(event.prev or event.kv, event.revision)
            yield watchcache.CachedEvent(
                watchcache.DELETED, event.kv.key, namespace, obj, None, event.revision
            )
            continue
        kind = (
            watchcache.ADDED
            if event.type is storage_backend.EventType.CREATE
            else watchcache.MODIFIED
        )
        yield watchcache.CachedEvent(
            kind, event.kv.key, namespace, watchcache.decode(event.kv), prev, event.revision
        )
