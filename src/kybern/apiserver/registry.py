"""The generic registry: Kubernetes object semantics over the revisioned store.

One ``Registry`` serves every kind (Kubernetes' genericregistry.Store). Reads come from the
watch cache after it has caught up with the store (consistent reads); writes run defaulting,
the kind's strategy, validation and admission, then a compare-and-swap on the backend. Objects
are kept in the resource's storage version and converted to the request's version at the edge.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from kybern.api import conversion, defaulting, kinds, managedfields, validation
from kybern.api import errors as api_errors
from kybern.apiserver import admission, errors, fieldvalidation, strategy, watchcache
from kybern.storage import backend as storage_backend
from kybern.storage import errors as storage_errors

PatchFn = Callable[[dict[str, Any]], dict[str, Any]]
Finish = Callable[[bool], Awaitable[None]]


class WriteHook(Protocol):
    """Per-resource storage hooks (Kubernetes' BeginCreate/BeginUpdate/AfterDelete), keyed
    by storage resource in ``Registry.hooks``: ``begin_*`` run after validation and return the
    function told whether the write was stored; ``after_delete`` runs once it is really gone.
    The Service allocators (kybern.apiserver.services) are one."""

    async def begin_create(self, obj: dict[str, Any], *, dry_run: bool) -> Finish: ...

    async def begin_update(
        self, new: dict[str, Any], old: dict[str, Any], *, dry_run: bool
    ) -> Finish: ...

    async def after_delete(self, obj: dict[str, Any]) -> None: ...


_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_CREATE_ON_UPDATE = {"endpoints", "events", "limitranges", "leases"}
# Kubernetes retries a conflicting patch until the request times out; N writers patching one
# object take about N rounds each (one CAS winner per round), so the bound must be generous.
GUARANTEED_UPDATE_TRIES = 1000


def storage_key(info: kinds.ResourceInfo, namespace: str, name: str) -> str:
    return watchcache.object_key(info.storage_resource, namespace if info.namespaced else "", name)


def to_version(info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored object as the request's group-version sees it (shared when identical)."""
    if obj.get("apiVersion") == info.api_version:
        return obj
    return conversion.convert(obj, info.api_version)


def to_storage(info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    if info.api_version == info.storage_version:
        return obj
    return conversion.convert(obj, info.storage_version)


def encode_for_storage(obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        obj = dict(obj, metadata={k: v for k, v in meta.items() if k != "resourceVersion"})
    return orjson.dumps(obj)


def json_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a stored object (JSON by construction): an orjson round trip is several
    times faster than ``copy.deepcopy``, and patches copy the current object on every write."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return copied


def _copy_if_json(obj: dict[str, Any]) -> dict[str, Any] | None:
    """json_copy, or None for a body JSON cannot carry (it takes the ordinary path)."""
    try:
        return json_copy(obj)
    except TypeError:
        return None


def _same(new: dict[str, Any], current: dict[str, Any]) -> bool:
    """Equal apart from metadata.resourceVersion."""
    if new.keys() != current.keys():
        return False
    for key, value in new.items():
        if key != "metadata" and value != current[key]:
            return False
    meta, old_meta = new["metadata"], current["metadata"]
    keys = (meta.keys() | old_meta.keys()) - {"resourceVersion"}
    return all(meta.get(k) == old_meta.get(k) for k in keys)


def revision_of(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


class _Stale(Exception):
    """A try on the cache's unverified object cannot be confirmed: decide on the store's."""


@dataclass(slots=True)
class DeleteResult:
    obj: dict[str, Any]
    deleted: bool  # False: still present (finalizers or graceful termination)


class Registry:
    """Object verbs for every kind, backed by one store and one watch cache."""

    def __init__(
        self,
        *,
        backend: storage_backend.Backend,
        cache: watchcache.WatchCache,
        admit: admission.Chain,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.admit = admit
        self.hooks: dict[str, WriteHook] = {}

    # -- reads -------------------------------------------------------------------------

    async def get(self, info: kinds.ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        obj = await self.current(info, namespace, name)
        if obj is None:
            raise errors.not_found(info.plural, name, info.group)
        return obj

    async def current(
        self, info: kinds.ResourceInfo, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """The object as of the store's current revision (a consistent read), None when
        absent: from the watch cache once it has caught up, else (a cache too far behind to
        catch up within a short wait) straight from the store, where Kubernetes reads it."""
        try:
            await self.cache.sync(watchcache.OBJECT_WAIT_TIMEOUT)
        except TimeoutError:
            return await self._from_store(info, namespace, name)
        key = storage_key(info, namespace, name)
        return self.cache.resource(info.storage_resource).objects.get(key)

    async def _from_store(
        self, info: kinds.ResourceInfo, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            kv = await self.backend.get(storage_key(info, namespace, name))
        except storage_errors.NotFound:
            return None
        return watchcache.decode(kv)

    def cached(self, info: kinds.ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        key = storage_key(info, namespace, name)
        obj = self.cache.resource(info.storage_resource).objects.get(key)
        if obj is None:
            raise errors.not_found(info.plural, name, info.group)
        return obj

    # -- create ------------------------------------------------------------------------

    async def create(
        self,
        info: kinds.ResourceInfo,
        namespace: str,
        body: dict[str, Any],
        *,
        dry_run: bool,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        obj = body  # freshly decoded for this request: ours to change
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata: the object's metadata must be a JSON object")
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        strategy.prepare_for_create(info, obj)
        generate = not meta.get("name") and isinstance(meta.get("generateName"), str)
        for _ in range(3 if generate else 1):
            if generate:
                # Not secret, only unlikely to collide (Kubernetes uses math/rand here too);
                # the system RNG costs a syscall per character.
                meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
            # After name and uid: some defaults derive from them (a Job's selector, a
            # namespace's name label).
            defaulting.default(info.group, info.kind, obj)
            unknown: list[str] = []
            causes = validation.validate_create(info, obj, unknown=unknown)
            fieldvalidation.check(info, unknown)  # Strict: 400 before any 422
            self._validate(info, causes, obj)
            try:
                async with self._write_hook(info, obj, None, dry_run):
                    return await self._admit_and_store_new(info, obj, dry_run, field_manager)
            except storage_errors.KeyExists:
                if not generate:
                    raise errors.already_exists(
                        info.plural, meta.get("name", ""), info.group
                    ) from None
        raise errors.StatusError(
            409,
            "AlreadyExists",
            f"{info.plural} with generateName {meta['generateName']!r} exhausted retries",
        )

    async def _admit_and_store_new(
        self,
        info: kinds.ResourceInfo,
        obj: dict[str, Any],
        dry_run: bool,
        field_manager: str | None,
    ) -> dict[str, Any]:
        await self.admit.on_create(admission.Request(info, dry_run=dry_run), obj)
        managedfields.update(None, obj, manager=field_manager, now=strategy.now_rfc3339())
        if dry_run:
            await self._refuse_taken_name(info, obj)
            return obj
        return await self._store_new(info, obj)

    async def _refuse_taken_name(self, info: kinds.ResourceInfo, obj: dict[str, Any]) -> None:
        """A dry-run create of a name in use fails as the real create would (Kubernetes'
        dry-run storage looks the key up instead of writing it)."""
        meta = obj["metadata"]
        key = storage_key(info, meta.get("namespace", ""), meta["name"])
        try:
            await self.backend.get(key)
        except storage_errors.NotFound:
            return
        raise storage_errors.KeyExists(key)

    @contextlib.asynccontextmanager
    async def _write_hook(
        self,
        info: kinds.ResourceInfo,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        dry_run: bool,
    ) -> AsyncIterator[None]:
        """Run the resource's WriteHook around the rest of a write (admission, store)."""
        hook = self.hooks.get(info.storage_resource)
        if hook is None:
            yield
            return
        if old is None:
            finish = await hook.begin_create(new, dry_run=dry_run)
        else:
            finish = await hook.begin_update(new, old, dry_run=dry_run)
        stored = False
        try:
            yield
            stored = True
        finally:
            await finish(stored)

    async def _store_new(self, info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        stored = to_storage(info, obj)
        key = storage_key(info, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        rev = await self.backend.create(key, encode_for_storage(stored))
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj

    # -- update ------------------------------------------------------------------------

    async def update(
        self,
        info: kinds.ResourceInfo,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        dry_run: bool,
        subresource: str = "",
        field_manager: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """PUT: -> (object, created)."""
        self._check_identity(info, namespace, name, body)
        suggested = self._suggestion(info, namespace, name)
        first = None
        if suggested is not None and not dry_run and revision_of(body) == revision_of(suggested):
            first = _copy_if_json(body)
        if suggested is not None and first is not None:
            # The version the client based its change on is the cached one: try it without
            # waiting for the cache (the store's compare-and-swap has the last word); on any
            # error decide again on the current state, as Kubernetes' GuaranteedUpdate does
            # with the watch cache's object as its suggestion.
            try:
                return await self._update_from(
                    info,
                    name,
                    first,
                    suggested,
                    False,
                    subresource,
                    field_manager,
                    verified=False,
                ), False
            except (errors.StatusError, api_errors.APIError, _Stale):
                pass
        current = await self.current(info, namespace, name)
        if current is None:
            if info.plural in _CREATE_ON_UPDATE and not subresource:
                body = dict(body, metadata={**body.get("metadata", {}), "name": name})
                created = await self.create(
                    info, namespace, body, dry_run=dry_run, field_manager=field_manager
                )
                return created, True
            raise errors.not_found(info.plural, name, info.group)
        updated = await self._update_from(
            info, name, body, current, dry_run, subresource, field_manager
        )
        return updated, False

    async def _update_from(
        self,
        info: kinds.ResourceInfo,
        name: str,
        body: dict[str, Any],
        current: dict[str, Any],
        dry_run: bool,
        subresource: str,
        field_manager: str | None,
        *,
        verified: bool = True,
    ) -> dict[str, Any]:
        uid, current_uid = body["metadata"].get("uid"), current["metadata"].get("uid")
        if uid and uid != current_uid:  # a PUT's uid is a precondition (409, as Kubernetes)
            raise errors.conflict(
                info.plural,
                name,
                info.group,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}",
            )
        expected = revision_of(body) or revision_of(current)
        # `body` was decoded for this request alone: ours to change.
        return await self._apply_update(
            info,
            to_version(info, current),
            body,
            expected,
            dry_run,
            subresource,
            field_manager,
            verified=verified,
        )

    async def patch(
        self,
        info: kinds.ResourceInfo,
        namespace: str,
        name: str,
        patch: PatchFn,
        *,
        dry_run: bool,
        subresource: str = "",
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """Apply `patch` to the current object; retried on a conflicting concurrent write
        unless the patch itself pins a resourceVersion (Kubernetes' GuaranteedUpdate)."""
        fieldvalidation.validate_options()
        suggested = None if dry_run else self._suggestion(info, namespace, name)
        for _ in range(GUARANTEED_UPDATE_TRIES):
            verified = suggested is None
            base = await self.get(info, namespace, name) if suggested is None else suggested
            suggested = None  # a failed try decides again on the current state
            current = to_version(info, base)
            try:
                new = patch(json_copy(current))
            except (errors.StatusError, api_errors.APIError):
                if verified:
                    raise
                continue  # judged on a maybe stale object: look at the current one
            if not isinstance(new, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            fieldvalidation.note_patched(new)
            self._check_identity(info, namespace, name, new)
            pinned = revision_of(new)
            if pinned and pinned != revision_of(current):
                if not verified:
                    continue
                raise errors.conflict(info.plural, name, info.group)
            try:
                return await self._apply_update(
                    info,
                    current,
                    new,
                    revision_of(current),
                    dry_run,
                    subresource,
                    field_manager,
                    verified=verified,
                )
            except _Stale:
                continue
            except api_errors.APIError:
                if verified:
                    raise
                continue
            except errors.StatusError as exc:
                # Retry even when `new` carries a resourceVersion: every patched object does
                # (the current one's). A patch that really pins one fails the check above on
                # the next round, since the current version has moved on. A try on the
                # cache's unverified object is retried whatever the error.
                if verified and exc.reason != "Conflict":
                    raise
        raise errors.conflict(info.plural, name, info.group)

    def _suggestion(
        self, info: kinds.ResourceInfo, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """The cache's object without waiting for the cache to catch up: maybe stale, so
        only a first try whose outcome the store's compare-and-swap confirms."""
        key = storage_key(info, namespace, name)
        return self.cache.resource(info.storage_resource).objects.get(key)

    async def _apply_update(
        self,
        info: kinds.ResourceInfo,
        current: dict[str, Any],
        new: dict[str, Any],
        expected: int,
        dry_run: bool,
        subresource: str,
        field_manager: str | None = None,
        *,
        verified: bool = True,
    ) -> dict[str, Any]:
        """verified=False: `current` is the cache's object, maybe stale (see _suggestion)."""
        name = current["metadata"]["name"]
        if expected != revision_of(current):
            raise errors.conflict(info.plural, name, info.group)
        new.setdefault("metadata", {})["namespace"] = current["metadata"].get("namespace")
        if not info.namespaced:
            new["metadata"].pop("namespace", None)
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        unknown: list[str] = []
        if subresource == "status":
            new = strategy.prepare_for_status_update(new, current)
            defaulting.default(info.group, info.kind, new, create=False)
            causes = validation.validate_status_update(info, new, current, unknown=unknown)
        elif subresource == "finalize":
            new = strategy.prepare_for_finalize(new, current)
            causes = validation.validate_update(info, new, current, unknown=unknown)
        else:
            defaulting.default(info.group, info.kind, new, create=False)
            strategy.prepare_for_update(info, new, current)
            causes = validation.validate_update(info, new, current, unknown=unknown)
        fieldvalidation.check(info, unknown)
        self._validate(info, causes, new)
        if subresource:  # status and finalize writes allocate nothing
            return await self._admit_and_store(
                info, current, new, expected, dry_run, subresource, field_manager, verified
            )
        async with self._write_hook(info, new, current, dry_run):
            return await self._admit_and_store(
                info, current, new, expected, dry_run, subresource, field_manager, verified
            )

    async def _admit_and_store(
        self,
        info: kinds.ResourceInfo,
        current: dict[str, Any],
        new: dict[str, Any],
        expected: int,
        dry_run: bool,
        subresource: str,
        field_manager: str | None,
        verified: bool = True,
    ) -> dict[str, Any]:
        name = current["metadata"]["name"]
        request = admission.Request(info, dry_run=dry_run, subresource=subresource)
        await self.admit.on_update(request, new, current)
        managedfields.update(
            current,
            new,
            manager=field_manager,
            now=strategy.now_rfc3339(),
            subresource=subresource,
        )
        if dry_run:
            new["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
            return new
        if self._finalized(new):
            return (await self.delete_now(info, new, expected)).obj
        if _same(new, current):
            # Kubernetes skips a write that changes nothing: no new revision, no watch event.
            # (Only once `current` is known to be the store's: no write confirms it here.)
            if not verified and self.cache.revision < self.backend.current_rev():
                raise _Stale()
            return current
        key = storage_key(info, current["metadata"].get("namespace", ""), name)
        try:
            rev = await self.backend.update(
                key, encode_for_storage(to_storage(info, new)), expected
            )
        except storage_errors.Conflict:
            raise errors.conflict(info.plural, name, info.group) from None
        except storage_errors.NotFound:
            raise errors.not_found(info.plural, name, info.group) from None
        new["metadata"]["resourceVersion"] = str(rev)
        return new

    @staticmethod
    def _finalized(obj: dict[str, Any]) -> bool:
        """An object being deleted whose last finalizer is gone is deleted by the update."""
        meta = obj["metadata"]
        spec_finalizers = (
            (obj.get("spec") or {}).get("finalizers") if obj.get("kind") == "Namespace" else None
        )
        return (
            bool(meta.get("deletionTimestamp"))
            and not meta.get("finalizers")
            and not spec_finalizers
            and meta.get("deletionGracePeriodSeconds", 0) == 0
        )

    def _check_identity(
        self, info: kinds.ResourceInfo, namespace: str, name: str, body: dict[str, Any]
    ) -> None:
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata: the object has no metadata")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if info.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    @staticmethod
    def _validate(
        info: kinds.ResourceInfo, causes: list[api_errors.Cause], obj: dict[str, Any]
    ) -> None:
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.invalid(info.kind, name, causes, info.group)

    # -- delete ------------------------------------------------------------------------

    async def delete_now(
        self, info: kinds.ResourceInfo, obj: dict[str, Any], expected: int
    ) -> DeleteResult:
        meta = obj["metadata"]
        key = storage_key(info, meta.get("namespace", ""), meta["name"])
        try:
            kv = await self.backend.delete(key, expected)
        except storage_errors.Conflict:
            raise errors.conflict(info.plural, meta["name"], info.group) from None
        except storage_errors.NotFound:
            raise errors.not_found(info.plural, meta["name"], info.group) from None
        gone = to_version(info, watchcache.decode(kv))
        hook = self.hooks.get(info.storage_resource)
        if hook is not None:
            await hook.after_delete(gone)
        return DeleteResult(gone, True)

    async def system_update(
        self, info: kinds.ResourceInfo, namespace: str, name: str, change: PatchFn, *, dry_run: bool
    ) -> dict[str, Any]:
        """A change the server makes on a client's behalf (pods/binding): `change` returns the
        whole new object, stored as is with compare-and-swap, retried on conflicts."""
        suggested = None if dry_run else self._suggestion(info, namespace, name)
        for _ in range(GUARANTEED_UPDATE_TRIES):
            verified = suggested is None
            base = await self.get(info, namespace, name) if suggested is None else suggested
            suggested = None
            current = to_version(info, base)
            try:
                new = change(json_copy(current))
            except (errors.StatusError, api_errors.APIError):
                if verified:
                    raise
                continue  # judged on a maybe stale object: look at the current one
            if dry_run:
                return new
            try:
                return await self.store_update(info, new, revision_of(current))
            except errors.StatusError as exc:
                if exc.reason != "Conflict":
                    raise
        raise errors.conflict(info.plural, name, info.group)

    async def store_update(
        self, info: kinds.ResourceInfo, obj: dict[str, Any], expected: int
    ) -> dict[str, Any]:
        """Write an object the server changed itself (deletion bookkeeping), CAS on expected."""
        meta = obj["metadata"]
        key = storage_key(info, meta.get("namespace", ""), meta["name"])
        try:
            rev = await self.backend.update(
                key, encode_for_storage(to_storage(info, obj)), expected
            )
        except storage_errors.Conflict:
            raise errors.conflict(info.plural, meta["name"], info.group) from None
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj
