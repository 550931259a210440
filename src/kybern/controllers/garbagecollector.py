"""Garbage collector: deletes what ownerReferences say should go (Kubernetes' GC).

The ownership graph is the informer caches themselves: every stored kind is watched, each
store is indexed by owner uid (``store.OWNER``) and by the object's own uid, so "dependents of
X" and "the object with uid X" are index lookups. Keys are uids.

- Background: a dependent whose owners are all gone is deleted. An owner missing from the
  cache is confirmed absent with a live GET (404, or an object of that name with another uid)
  before anything is deleted, as Kubernetes does.
- Foreground: an owner being deleted with the ``foregroundDeletion`` finalizer is "waiting for
  dependents": its dependents are deleted; once none of those with ``blockOwnerDeletion``
  remains, the finalizer is removed and the API server deletes the owner.
- Orphan: an owner being deleted with the ``orphan`` finalizer has the ownerReferences to it
  removed from its dependents, then the finalizer removed.
- A dependent with a remaining live owner only loses its references to gone/waiting owners.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import kinds
from kybern.client import store as store_
from kybern.controllers import runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
UID = "uid"


def by_uid(obj: Obj) -> Iterable[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


@functools.cache
def monitored_resources() -> tuple[kinds.ResourceInfo, ...]:
    """Every stored resource once (one version per storage location) that can be watched
    and deleted."""
    seen: set[str] = set()
    out = []
    for info in kinds.all_resources():
        if info.virtual or info.storage_resource in seen:
            continue
        if {"list", "watch", "delete"} <= set(info.verbs):
            seen.add(info.storage_resource)
            out.append(info)
    return tuple(out)


def _finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def _refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def _waiting(obj: Obj) -> bool:
    """An owner in foreground deletion, waiting for its dependents to go."""
    return bool(obj["metadata"].get("deletionTimestamp")) and FOREGROUND in _finalizers(obj)


class GarbageCollector:
    name = "garbagecollector"
    workers = 4

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
        resources: Sequence[kinds.ResourceInfo] | None = None,
    ) -> None:
        self.client = client
        self.stores: list[tuple[kinds.ResourceInfo, kclient.Store]] = []
        for info in monitored_resources() if resources is None else resources:
            informer = informers.informer_for(info.api_version, info.kind)
            if UID not in informer.store.indexers:
                informer.add_indexer(UID, by_uid)
            self.stores.append((info, informer.store))

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(info.api_version, info.kind, self.keys, self.deleted_keys)
            for info, _ in self.stores
        ]

    # -- events -> keys ----------------------------------------------------------------

    def keys(self, obj: Obj) -> Iterable[str]:
        """Itself if it is being deleted or one of its owners is not a live cached object
        (the common case, every owner alive, costs no reconcile: an owner's deletion brings
        its dependents back here); when being deleted also its dependents (they may now be
        garbage) and its owners (one may be waiting on it)."""
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return []
        out = []
        if meta.get("deletionTimestamp") or any(self._suspect(ref) for ref in _refs(obj)):
            out.append(uid)
        if meta.get("deletionTimestamp"):
            out.extend(self.dependent_uids(uid))
            out.extend(ref["uid"] for ref in _refs(obj) if ref.get("uid"))
        return out

    def _suspect(self, ref: Obj) -> bool:
        found = self.find(str(ref.get("uid")))
        return found is None or _waiting(found[1])

    def deleted_keys(self, obj: Obj) -> Iterable[str]:
        """A deleted object's dependents (maybe garbage now) and owners (maybe waiting)."""
        uid = (obj.get("metadata") or {}).get("uid")
        out = list(self.dependent_uids(uid)) if uid else []
        out.extend(ref["uid"] for ref in _refs(obj) if ref.get("uid"))
        return out

    # -- the graph ---------------------------------------------------------------------

    def find(self, uid: str) -> tuple[kinds.ResourceInfo, Obj] | None:
        for info, store in self.stores:
            found = store.by_index(UID, uid)
            if found:
                return info, found[0]
        return None

    def dependents(self, uid: str) -> list[tuple[kinds.ResourceInfo, Obj]]:
        return [
            (info, obj) for info, store in self.stores for obj in store.by_index(store_.OWNER, uid)
        ]

    def dependent_uids(self, uid: str) -> Iterable[str]:
        return [obj["metadata"]["uid"] for _, obj in self.dependents(uid)]

    # -- reconcile ---------------------------------------------------------------------

    async def reconcile(self, key: str) -> runtime.Result:
        found = self.find(key)
        if found is None:
            return runtime.Result()
        info, obj = found
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            finalizers = _finalizers(obj)
            if ORPHAN in finalizers:
                await self.orphan_dependents(obj)
                await self.remove_finalizer(info, obj, ORPHAN)
            elif FOREGROUND in finalizers:
                await self.process_foreground(info, obj)
            return runtime.Result()
        if meta.get("ownerReferences"):
            await self.attempt_to_delete(info, obj)
        return runtime.Result()

    async def owner_state(self, obj: Obj, ref: Obj) -> str:
        """'solid', 'waiting' or 'dangling' for one ownerReference of ``obj``."""
        owner_info = kinds.for_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
        if owner_info is None:
            log.warning("unknown owner kind %s %s: kept", ref.get("apiVersion"), ref.get("kind"))
            return "solid"
        cached = self.find(str(ref.get("uid")))
        if cached is not None:
            return "waiting" if _waiting(cached[1]) else "solid"
        namespace = obj["metadata"].get("namespace", "") if owner_info.namespaced else ""
        try:
            live = await self.client.get(
                owner_info.api_version, owner_info.kind, str(ref["name"]), namespace=namespace
            )
        except kclient.NotFound:
            return "dangling"
        if live["metadata"].get("uid") != ref.get("uid"):
            return "dangling"
        return "waiting" if _waiting(live) else "solid"

    async def attempt_to_delete(self, info: kinds.ResourceInfo, obj: Obj) -> None:
        refs = _refs(obj)
        states = {str(ref.get("uid")): await self.owner_state(obj, ref) for ref in refs}
        gone = [uid for uid, state in states.items() if state != "solid"]
        if not gone:
            return
        if len(gone) < len(states):  # a live owner remains: only drop the dead references
            await self.remove_refs(info, obj, gone)
            return
        policy = "Background"
        if ORPHAN in _finalizers(obj):
            policy = "Orphan"
        elif FOREGROUND in _finalizers(obj) or (
            "waiting" in states.values() and self.dependents(obj["metadata"]["uid"])
        ):
            policy = "Foreground"
        await self.delete(info, obj, policy)

    async def process_foreground(self, info: kinds.ResourceInfo, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        blocking = []
        for dep_info, dep in self.dependents(uid):
            ref = next(r for r in _refs(dep) if r.get("uid") == uid)
            if ref.get("blockOwnerDeletion"):
                blocking.append(dep)
            if not dep["metadata"].get("deletionTimestamp"):
                await self.attempt_to_delete(dep_info, dep)
        if not blocking:
            await self.remove_finalizer(info, owner, FOREGROUND)

    async def orphan_dependents(self, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_info, dep in self.dependents(uid):
            await self.remove_refs(dep_info, dep, [uid])

    # -- writes ------------------------------------------------------------------------

    async def delete(self, info: kinds.ResourceInfo, obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        log.info(
            "deleting %s %s/%s (%s): owners gone",
            info.kind,
            meta.get("namespace", ""),
            meta["name"],
            policy,
        )
        try:
            await self.client.delete(
                info.api_version,
                info.kind,
                meta["name"],
                namespace=meta.get("namespace", ""),
                propagation_policy=policy,
                preconditions={"uid": meta["uid"]},
            )
        except kclient.NotFound:
            pass
        except kclient.Conflict:
            pass  # another object of that name now: not ours to delete

    async def remove_refs(self, info: kinds.ResourceInfo, obj: Obj, uids: list[str]) -> None:
        meta = obj["metadata"]
        patch = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": uid} for uid in uids],
                "uid": meta["uid"],
            }
        }
        try:
            await self.client.patch(
                info.api_version,
                info.kind,
                meta["name"],
                patch,
                namespace=meta.get("namespace", ""),
                patch_type="strategic",
            )
        except kclient.NotFound:
            pass

    async def remove_finalizer(self, info: kinds.ResourceInfo, obj: Obj, finalizer: str) -> None:
        """Read the latest object and PUT it without ``finalizer`` (409s retry via backoff)."""
        meta = obj["metadata"]
        try:
            latest = await self.client.get(
                info.api_version, info.kind, meta["name"], namespace=meta.get("namespace", "")
            )
        except kclient.NotFound:
            return
        if latest["metadata"].get("uid") != meta["uid"] or finalizer not in _finalizers(latest):
            return
        latest["metadata"]["finalizers"] = [f for f in _finalizers(latest) if f != finalizer]
        latest.setdefault("apiVersion", info.api_version)
        latest.setdefault("kind", info.kind)
        await self.client.update(latest)
