"""The reconciler runtime: what every controller shares (controller-runtime's shape).

A controller is a ``Controller``: a name, the resources it watches with a function turning a
changed object into the keys to reconcile (the object's own key, its owner's key ...), and
``async def reconcile(key) -> Result``. Reconcile is level-based: it reads the current state
from the informer caches and makes the world agree; it never sees the event.

The ``Runner`` owns everything else: it registers the event handlers (object -> keys,
tombstones included), owns the rate-limited work queue, runs ``workers`` tasks that each take
a key, call ``reconcile`` and then decide from the outcome:

- ``Result()``: done, forget the key's backoff.
- ``Result(requeue_after=s)``: done, look again in ``s`` seconds (for time-based conditions).
- ``TerminalError``: logged, not retried (until the next event for the key).
- any other exception: retried with per-key exponential backoff; logged with its traceback
  unless it is an API error answer (a 409 Conflict from a stale cache is routine).

Every reconcile gets an id (in the log lines and in ``reconcile_id`` for the controller's own
logs) and is counted in ``kybern_controller_reconcile_total{controller,result}``.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import prometheus_client

from kybern import client as kclient
from kybern.client import workqueue

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KeysOf = Callable[[Obj], Iterable[str]]

REGISTRY = prometheus_client.CollectorRegistry()
RECONCILES = prometheus_client.Counter(
    "kybern_controller_reconcile_total",
    "Reconciles by controller and outcome (success, requeue, error, terminal).",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = prometheus_client.Histogram(
    "kybern_controller_reconcile_time_seconds",
    "Time spent in one reconcile.",
    ["controller"],
    registry=REGISTRY,
)

reconcile_id: contextvars.ContextVar[str] = contextvars.ContextVar("reconcile_id", default="")
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after ``requeue_after`` s."""

    requeue_after: float | None = None


class TerminalError(Exception):
    """A failure retrying cannot fix (bad spec): logged, not requeued."""


@dataclass(frozen=True, slots=True)
class Watch:
    """A resource a controller watches and how a changed object maps to keys to reconcile
    (``deleted_keys``, when given, maps a deleted object's last state instead)."""

    api_version: str
    kind: str
    keys: KeysOf
    deleted_keys: KeysOf | None = None


class Controller(Protocol):
    name: str
    workers: int

    def watches(self) -> Sequence[Watch]: ...

    async def reconcile(self, key: str) -> Result: ...


def own_key(obj: Obj) -> Iterable[str]:
    """The object's own ``namespace/name`` key (the usual primary-resource mapping)."""
    return [kclient.key_of(obj)]


def controller_owner_keys(kind: str) -> KeysOf:
    """Keys of the object's controlling owner when it is a ``kind`` (pods -> their RS)."""

    def keys(obj: Obj) -> Iterable[str]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == kind:
                namespace = meta.get("namespace")
                return [f"{namespace}/{ref['name']}" if namespace else str(ref["name"])]
        return []

    return keys


class _Handler:
    """Informer events -> keys on the queue; the only thing event handlers do."""

    def __init__(self, watch: Watch, add: Callable[[str], None]) -> None:
        self.keys = watch.keys
        self.deleted_keys = watch.deleted_keys or watch.keys
        self.add = add

    def _enqueue(self, obj: Obj) -> None:
        for key in self.keys(obj):
            self.add(key)

    def on_add(self, obj: Obj) -> None:
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._enqueue(old)
        self._enqueue(new)

    def on_delete(self, obj: Obj | kclient.DeletedFinalStateUnknown) -> None:
        for key in self.deleted_keys(kclient.object_of(obj)):
            self.add(key)


class Runner:
    """Runs one controller: its handlers, its queue and its workers."""

    def __init__(
        self,
        controller: Controller,
        informers: kclient.SharedInformerFactory,
        *,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.controller = controller
        self.informers = informers
        self.queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue(
            controller.name, clock=clock or informers.clock
        )
        self.outcomes: Counter[str] = Counter()  # success/requeue/error/terminal, for tests

    def register(self) -> None:
        """Attach the event handlers (creates the informers; start them afterwards)."""
        for watch in self.controller.watches():
            informer = self.informers.informer_for(watch.api_version, watch.kind)
            informer.add_handler(_Handler(watch, self.queue.add))

    async def run(self) -> None:
        """Work until cancelled (the informers must have synced)."""
        workers = [
            asyncio.create_task(self._worker(), name=f"{self.controller.name}-worker-{i}")
            for i in range(max(1, self.controller.workers))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.queue.shutdown()

    async def _worker(self) -> None:
        async for key in self.queue:
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """One reconcile of ``key`` and the queue bookkeeping its outcome calls for."""
        name = self.controller.name
        rid = f"{name}-{next(_ids)}"
        token = reconcile_id.set(rid)
        started = time.perf_counter()
        try:
            result = await self.controller.reconcile(key)
        except asyncio.CancelledError:
            raise
        except TerminalError as exc:
            self._count("terminal")
            self.queue.forget(key)
            log.error("%s [%s] %s: giving up: %s", name, rid, key, exc)
        except kclient.ApiError as exc:  # a Status answer (409, 5xx ...): routine, no traceback
            self._count("error")
            level = logging.INFO if isinstance(exc, kclient.Conflict) else logging.WARNING
            log.log(level, "%s [%s] %s: %s; will retry", name, rid, key, exc)
            self.queue.add_rate_limited(key)
        except Exception:
            self._count("error")
            log.exception("%s [%s] %s: reconcile failed; will retry", name, rid, key)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
            if result.requeue_after is not None:
                self._count("requeue")
                self.queue.add_after(key, result.requeue_after)
            else:
                self._count("success")
            log.debug("%s [%s] %s: reconciled (%s)", name, rid, key, result)
        finally:
            RECONCILE_SECONDS.labels(name).observe(time.perf_counter() - started)
            reconcile_id.reset(token)

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        RECONCILES.labels(self.controller.name, outcome).inc()
