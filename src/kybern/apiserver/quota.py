"""ResourceQuota admission: refuse a write that would take a namespace over its quota.

Kubernetes' ResourceQuota plugin. For a create (or an update of a kind whose usage can grow:
services, persistentvolumeclaims) in a namespace with quotas, every quota that covers the
object (``kybern.api.quotausage``: its hard names and scopes) is checked:

- a quota on cpu/memory refuses pods whose containers do not state them
  (``failed quota: <name>: must specify ...``);
- a quota whose ``status`` lacks usage for a covered name refuses until the controller has
  filled it (``status unknown for quota: ...``); a quota whose ``status.hard`` is still empty
  covers nothing yet, as in Kubernetes;
- ``used + requested > hard`` refuses with ``exceeded quota: <name>, requested: ...,
  used: ..., limited: ...``.

The new usage is then charged into each quota's ``status.used`` with a compare-and-swap on
the store *before* the object is admitted, retried against the latest quota on a conflict,
so concurrent creates can never both pass a limit. Within one server, admissions in one
namespace take turns (a per-namespace lock), so they do not lose the CAS to each other; the
CAS guards against the other writers (the controller, other API servers). A create whose
name is already taken is not charged (the store refuses it anyway). The ResourceQuota
controller later recomputes ``status.used`` from what exists (releasing usage of deleted or
finished objects and of writes that failed after admission).

A dry-run write (``?dryRun=All``, ``kubectl create --dry-run=server``) is judged the same way,
with the same refusals, but charges nothing: Kubernetes' quota evaluator checks a dry-run
request against the current usage and skips the status update. Subresource writes (status,
eviction) are not quota's business, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from kybern.api import kinds, quotausage, resourcelist
from kybern.apiserver import errors, watchcache

if TYPE_CHECKING:  # admission imports the plugins to build its chain
    from kybern.apiserver import admission
from kybern.storage import backend as storage_backend
from kybern.storage import errors as storage_errors

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RESOURCE = "resourcequotas"
MAX_TRIES = 200  # each conflict means another writer got its charge in: progress


class _Lock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class ResourceQuotaAdmission:
    """The ``ResourceQuota`` admission plugin over the watch cache and the store."""

    def __init__(self, cache: watchcache.WatchCache, backend: storage_backend.Backend) -> None:
        self.cache = cache
        self.backend = backend
        self._locks: dict[str, _Lock] = {}

    async def on_create(self, req: admission.Request, obj: Obj) -> None:
        if not req.subresource:
            await self._admit(req.info, obj, None, req.dry_run)

    async def on_update(self, req: admission.Request, new: Obj, old: Obj) -> None:
        if not req.subresource:
            await self._admit(req.info, new, old, req.dry_run)

    async def on_delete(self, req: admission.Request, obj: Obj) -> None:
        return None

    def quotas(self, namespace: str) -> list[Obj]:
        cache = self.cache.resource(RESOURCE)
        prefix = watchcache.collection_prefix(RESOURCE, namespace)
        return [cache.objects[key] for key in cache.keys_in(prefix) if key in cache.objects]

    async def _admit(
        self, info: kinds.ResourceInfo, obj: Obj, old: Obj | None, dry_run: bool
    ) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        if not info.namespaced or not namespace or not self.quotas(namespace):
            return
        evaluator = quotausage.evaluator_for(info.plural, info.group)
        if evaluator is None or (old is not None and not evaluator.handles_update):
            return
        if old is None and self._exists(info, obj):
            return  # the store refuses it (AlreadyExists): charging would only leak usage
        delta = evaluator.usage(obj, None)
        if old is not None:
            # Only growth is charged; shrinking is released by the controller.
            delta = resourcelist.without_negatives(
                resourcelist.subtract(delta, evaluator.usage(old, None))
            )
        if resourcelist.is_zero(delta):
            return
        if dry_run:  # judged against the current usage; nothing is charged
            self._check(info, obj, evaluator, delta, self.quotas(namespace), set())
            return
        async with self._serialized(namespace):
            await self._check_and_charge(info, obj, evaluator, delta)

    async def _check_and_charge(
        self,
        info: kinds.ResourceInfo,
        obj: Obj,
        evaluator: quotausage.Evaluator,
        delta: resourcelist.ResourceList,
    ) -> None:
        namespace = obj["metadata"]["namespace"]
        charged: set[str] = set()
        for _ in range(MAX_TRIES):
            pending = self._check(info, obj, evaluator, delta, self.quotas(namespace), charged)
            revision = await self._charge(pending, charged)
            if revision is not None:
                # The next admission in this namespace should see this charge in the cache
                # (if the cache lags too long, it meets a conflict and re-reads instead).
                with contextlib.suppress(TimeoutError):
                    await self.cache.wait_for(revision)
                return
            await self.cache.sync()  # a conflict: look again at the latest quotas
        raise errors.conflict(RESOURCE, "", "", "too many concurrent quota updates; try again")

    @contextlib.asynccontextmanager
    async def _serialized(self, namespace: str) -> AsyncIterator[None]:
        """One admission at a time per namespace in this process: concurrent creates would
        otherwise mostly lose the compare-and-swap and retry (the store's CAS still guards
        against other writers: the controller, other API servers)."""
        entry = self._locks.setdefault(namespace, _Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[namespace]

    def _exists(self, info: kinds.ResourceInfo, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        key = watchcache.object_key(info.storage_resource, meta["namespace"], meta.get("name", ""))
        return key in self.cache.resource(info.storage_resource).objects

    def _check(
        self,
        info: kinds.ResourceInfo,
        obj: Obj,
        evaluator: quotausage.Evaluator,
        delta: resourcelist.ResourceList,
        quotas: list[Obj],
        charged: set[str],
    ) -> list[tuple[Obj, resourcelist.ResourceList]]:
        """The quotas to charge and their new ``used``; Forbidden when one refuses."""
        out = []
        for quota in quotas:
            name = quota["metadata"]["name"]
            hard = quotausage.hard_of(quota)
            if name in charged or not evaluator.matches(quota, obj, hard):
                continue
            restricted = evaluator.matching(hard)
            if evaluator.constraints is not None:
                problem = evaluator.constraints(restricted, obj)
                if problem:
                    raise _forbidden(info, obj, f"failed quota: {name}: {problem}")
            used = quotausage.used_of(quota)
            if any(n not in used for n in restricted):
                names = ",".join(sorted(restricted))
                raise _forbidden(info, obj, f"status unknown for quota: {name}, resources: {names}")
            requested = resourcelist.mask(delta, hard)
            new_used = resourcelist.add(used, requested)
            over = resourcelist.exceeded(resourcelist.mask(new_used, requested), hard)
            if over:
                raise _forbidden(info, obj, _exceeded(name, requested, used, hard, over))
            if not resourcelist.equal(new_used, used):
                out.append((quota, new_used))
        return out

    async def _charge(
        self, pending: list[tuple[Obj, resourcelist.ResourceList]], charged: set[str]
    ) -> int | None:
        """Write each quota's new usage (compare-and-swap): the last revision written, or
        None after a conflict."""
        revision = 0
        for quota, new_used in pending:
            meta = quota["metadata"]
            status = {**(quota.get("status") or {}), "used": new_used}
            stored = {**quota, "status": status}
            stored["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
            key = watchcache.object_key(RESOURCE, meta["namespace"], meta["name"])
            try:
                revision = await self.backend.update(
                    key, orjson.dumps(stored), int(meta.get("resourceVersion") or 0)
                )
            except storage_errors.Conflict:
                return None
            except storage_errors.NotFound:
                pass  # the quota is gone: nothing to charge
            charged.add(meta["name"])
        return revision


def _exceeded(
    name: str,
    requested: resourcelist.ResourceList,
    used: resourcelist.ResourceList,
    hard: resourcelist.ResourceList,
    over: list[str],
) -> str:
    zero = dict.fromkeys(over, "0")
    return (
        f"exceeded quota: {name}, "
        f"requested: {resourcelist.pretty(resourcelist.mask(requested, over))}, "
        f"used: {resourcelist.pretty(resourcelist.mask({**zero, **used}, over))}, "
        f"limited: {resourcelist.pretty(resourcelist.mask(hard, over))}"
    )


def _forbidden(info: kinds.ResourceInfo, obj: Obj, detail: str) -> errors.StatusError:
    name = (obj.get("metadata") or {}).get("name") or ""
    return errors.forbidden(info.plural, name, info.group, detail)
