"""Shared informers: one list+watch per resource feeding a cache and event handlers.

An ``Informer`` lists a resource, then watches it from the list's resourceVersion, keeping a
``store.Store`` equal to the server's state and telling its handlers what changed. It is
client-go's reflector + DeltaFIFO + sharedIndexInformer, flattened for one asyncio loop:

- A watch that ends (server timeout, dropped connection, transport error) is resumed from
  the last resourceVersion seen (events or bookmarks), after a backoff if it failed.
- A 410 Gone (the server's history no longer reaches that far) makes it list again; objects
  that vanished meanwhile are reported to ``on_delete`` as ``DeletedFinalStateUnknown``
  tombstones, since their last state was never seen.
- ``has_synced`` turns true once the first list is in the store and handlers have seen it.
  A handler registered later first gets ``on_add`` for every object already cached.

``SharedInformerFactory`` hands every component in a process the same informer per resource
(DESIGN.md §1: one cache per resource). Cached objects are shared: never change one in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kybern.client import clock as clock_
from kybern.client import errors, resources, store

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MIN_WATCH_TIMEOUT = 300  # seconds; each watch asks for a random timeout in [min, 2*min)
BACKOFF_INITIAL = 0.8
BACKOFF_MAX = 30.0


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A delete the informer missed (it happened while no watch was open): ``obj`` is the
    last state the informer saw, possibly stale."""

    key: str
    obj: Obj


class EventHandler(Protocol):
    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


@dataclass(slots=True)
class FuncHandler:
    """An ``EventHandler`` from plain functions (any may be omitted)."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add is not None:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update is not None:
            self.update(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self.delete is not None:
            self.delete(obj)


def object_of(item: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object of a delete notification, tombstone or not."""
    return item.obj if isinstance(item, DeletedFinalStateUnknown) else item


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """List+watch of one resource (optionally one namespace / selector) into a store."""

    def __init__(
        self,
        client: resources.Client,
        api_version: str,
        kind: str,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        clock: clock_.Clock = clock_.REAL,
        indexers: dict[str, store.IndexFunc] | None = None,
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.clock = clock
        self.store = store.Store(indexers)
        self.handlers: list[EventHandler] = []
        self.last_resource_version = ""
        self.lists = 0  # how many times it listed (1 + relists): for tests and metrics
        self.watches = 0
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- public API --------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    def add_handler(self, handler: EventHandler) -> None:
        """Register a handler; once synced it first gets ``on_add`` for cached objects."""
        self.handlers.append(handler)
        if self.has_synced:
            for obj in self.store.list():
                _call(handler.on_add, obj)

    def add_indexer(self, name: str, fn: store.IndexFunc) -> None:
        self.store.add_indexer(name, fn)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"informer-{self.api_version}-{self.kind}"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """List, then watch and resume, forever (until cancelled)."""
        backoff = BACKOFF_INITIAL
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                if await self._watch():
                    backoff = BACKOFF_INITIAL
                    continue
                # Ended without a single event: do not hammer a server that is shutting
                # watches down; wait before resuming.
                await self.clock.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except errors.Gone:
                log.info(
                    "%s %s: resourceVersion %s is too old; relisting",
                    self.api_version,
                    self.kind,
                    self.last_resource_version,
                )
                need_list = True
            except (errors.ClientError, OSError) as exc:
                log.warning(
                    "%s %s: list/watch failed, retrying in %.1fs: %s",
                    self.api_version,
                    self.kind,
                    backoff,
                    exc,
                )
                await self.clock.sleep(backoff * (1 + random.random() * 0.5))
                backoff = min(backoff * 2, BACKOFF_MAX)

    # -- list and watch ----------------------------------------------------------------

    async def _list(self) -> None:
        listed = await self.client.list(
            self.api_version,
            self.kind,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            shared=True,
        )
        self.lists += 1
        self._replace(listed.get("items") or [])
        self.last_resource_version = str((listed.get("metadata") or {}).get("resourceVersion"))
        self._synced.set()

    def _replace(self, items: list[Obj]) -> None:
        """Make the store equal to a fresh list; what disappeared is a tombstone delete."""
        fresh = {store.key_of(obj): obj for obj in items}
        for key in self.store.list_keys():
            if key not in fresh:
                old = self.store.remove(key)
                if old is not None:
                    self._emit_delete(DeletedFinalStateUnknown(key, old))
        for obj in fresh.values():
            self._apply_put(obj)

    async def _watch(self) -> int:
        """Follow one watch until it ends; -> how many events it carried."""
        self.watches += 1
        count = 0
        events = self.client.watch(
            self.api_version,
            self.kind,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.last_resource_version,
            timeout_seconds=int(MIN_WATCH_TIMEOUT * (1 + random.random())),
            allow_bookmarks=True,
            shared=True,
        )
        try:
            async for event in events:
                count += 1
                self._apply_event(event.type, event.object)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return count

    def _apply_event(self, kind: str, obj: Obj) -> None:
        rv = _rv(obj)
        if kind == "BOOKMARK":
            if rv:
                self.last_resource_version = rv
            return
        if kind in ("ADDED", "MODIFIED"):
            self._apply_put(obj)
        elif kind == "DELETED":
            self.store.remove(store.key_of(obj))
            self._emit_delete(obj)
        if rv:
            self.last_resource_version = rv

    def _apply_put(self, obj: Obj) -> None:
        old = self.store.put(obj)
        if old is None:
            for handler in self.handlers:
                _call(handler.on_add, obj)
        elif old is not obj and (_rv(old) != _rv(obj) or not _rv(obj)):
            for handler in self.handlers:
                _call(handler.on_update, old, obj)

    def _emit_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for handler in self.handlers:
            _call(handler.on_delete, obj)


def _call(fn: Callable[..., None], *args: Any) -> None:
    """A failing handler is logged and must not stop the informer (or other handlers)."""
    try:
        fn(*args)
    except Exception:
        log.exception("informer event handler %r failed", fn)


class SharedInformerFactory:
    """One informer per (resource, namespace) for everything in the process."""

    def __init__(
        self, client: resources.Client, *, namespace: str = "", clock: clock_.Clock = clock_.REAL
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.clock = clock
        self._informers: dict[tuple[str, str, str], Informer] = {}

    def informer_for(
        self, api_version: str, kind: str, *, namespace: str | None = None
    ) -> Informer:
        """The shared informer of a resource (``kind`` may also be the plural); created on
        first use, started by ``start``."""
        info = resources.resource_info(api_version, kind)
        ns = self.namespace if namespace is None else namespace
        key = (info.group, info.plural, ns)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client, info.api_version, info.kind, namespace=ns, clock=self.clock
            )
            self._informers[key] = informer
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running (call again after asking for more)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self) -> None:
        """Return once every informer has synced (bound it with ``asyncio.timeout``)."""
        await asyncio.gather(*(informer.wait_for_sync() for informer in self._informers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
