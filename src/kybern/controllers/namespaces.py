"""Namespace lifecycle: a deleted namespace loses its contents, then itself.

Deleting a namespace only marks it (deletionTimestamp, phase Terminating) while its
``spec.finalizers`` holds ``kubernetes``. This controller then does what Kubernetes'
namespace deleter does: delete every namespaced resource in it (deletecollection per resource
kind), list again to see what remains, report that in the namespace's conditions, and once
nothing is left remove the ``kubernetes`` finalizer through ``namespaces/<name>/finalize``;
the API server then removes the namespace.

Conditions (type: status/reason, as kube-controller-manager sets them):
NamespaceDeletionDiscoveryFailure False/ResourcesDiscovered,
NamespaceDeletionGroupVersionParsingFailure False/ParsedGroupVersions,
NamespaceDeletionContentFailure False/ContentDeleted or True/ContentDeletionFailed,
NamespaceContentRemaining False/ContentRemoved or True/SomeResourcesRemain,
NamespaceFinalizersRemaining False/ContentHasNoFinalizers or True/SomeFinalizersRemain.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kybern import client as kclient
from kybern.api import kinds
from kybern.controllers import runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

FINALIZER = "kubernetes"
REQUEUE_WHILE_CONTENT_REMAINS = 1.0  # seconds; Kubernetes waits its graceful estimate


@functools.cache
def namespaced_resources() -> tuple[kinds.ResourceInfo, ...]:
    """Every stored namespaced resource once (one version per storage location)."""
    seen: set[str] = set()
    out = []
    for info in kinds.all_resources():
        if not info.namespaced or info.virtual or info.storage_resource in seen:
            continue
        if "list" in info.verbs and "delete" in info.verbs:
            seen.add(info.storage_resource)
            out.append(info)
    return tuple(out)


@dataclass
class Deletion:
    """What one pass over the namespace's contents found."""

    remaining: Counter[str] = field(default_factory=Counter)  # "pods." -> count
    finalizers: Counter[str] = field(default_factory=Counter)  # finalizer -> objects
    failures: list[str] = field(default_factory=list)


class NamespaceController:
    name = "namespace"
    workers = 2

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.namespaces = informers.informer_for("v1", "Namespace").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [runtime.Watch("v1", "Namespace", runtime.own_key)]

    async def reconcile(self, key: str) -> runtime.Result:
        namespace = self.namespaces.get(key)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return runtime.Result()
        if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or []):
            return runtime.Result()
        found = await self.delete_content(key)
        await self.update_conditions(namespace, conditions_for(found, self.now()))
        if found.failures:
            raise RuntimeError(f"namespace {key}: {'; '.join(found.failures)}")
        if found.remaining:
            return runtime.Result(requeue_after=REQUEUE_WHILE_CONTENT_REMAINS)
        await self.finalize(key)
        return runtime.Result()

    def now(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    async def delete_content(self, namespace: str) -> Deletion:
        found = Deletion()
        for info in namespaced_resources():
            try:
                await self._delete_all(info, namespace, found)
            except kclient.ApiError as exc:
                found.failures.append(f"{info.plural}.{info.group}: {exc}")
        return found

    async def _delete_all(self, info: kinds.ResourceInfo, namespace: str, found: Deletion) -> None:
        items = await self._list(info, namespace)
        if not items:
            return
        if "deletecollection" in info.verbs:
            await self.client.delete_collection(info.api_version, info.kind, namespace=namespace)
        else:
            for item in items:
                await self._delete_one(info, namespace, item)
        for item in await self._list(info, namespace):
            found.remaining[f"{info.plural}.{info.group}"] += 1
            for finalizer in item["metadata"].get("finalizers") or []:
                found.finalizers[finalizer] += 1

    async def _list(self, info: kinds.ResourceInfo, namespace: str) -> list[Obj]:
        listed = await self.client.list(info.api_version, info.kind, namespace=namespace)
        return list(listed.get("items") or [])

    async def _delete_one(self, info: kinds.ResourceInfo, namespace: str, item: Obj) -> None:
        try:
            await self.client.delete(
                info.api_version, info.kind, item["metadata"]["name"], namespace=namespace
            )
        except kclient.NotFound:
            pass

    async def update_conditions(self, namespace: Obj, conditions: list[Obj]) -> None:
        status = namespace.get("status") or {}
        merged = merge_conditions(status.get("conditions") or [], conditions)
        if merged == (status.get("conditions") or []):
            return
        updated = copy.deepcopy(namespace)
        updated.setdefault("status", {})["conditions"] = merged
        try:
            await self.client.update_status(updated)
        except kclient.NotFound:
            pass

    async def finalize(self, name: str) -> None:
        """Drop our finalizer from spec.finalizers (re-read: the cache may lag)."""
        try:
            current = await self.client.get("v1", "Namespace", name)
        except kclient.NotFound:
            return
        finalizers = (current.get("spec") or {}).get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        current.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
        await self.client.update(current, subresource="finalize")
        log.info("namespace %s: content deleted, finalized", name)


def conditions_for(found: Deletion, now: str) -> list[Obj]:
    """The namespace deletion conditions for what one pass found."""

    def cond(type_: str, true: bool, reason: str, message: str) -> Obj:
        status = "True" if true else "False"
        return {
            "type": type_,
            "status": status,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    remaining = ", ".join(f"{res} has {n} resource instances" for res, n in found.remaining.items())
    finalizers = ", ".join(f"{f} in {n} resource instances" for f, n in found.finalizers.items())
    return [
        cond(
            "NamespaceDeletionDiscoveryFailure",
            False,
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            False,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        cond(
            "NamespaceDeletionContentFailure",
            bool(found.failures),
            "ContentDeletionFailed" if found.failures else "ContentDeleted",
            f"Failed to delete all resource types, {len(found.failures)} remaining: "
            + "; ".join(found.failures)
            if found.failures
            else "All content successfully deleted, may be waiting on finalization",
        ),
        cond(
            "NamespaceContentRemaining",
            bool(found.remaining),
            "SomeResourcesRemain" if found.remaining else "ContentRemoved",
            f"Some resources are remaining: {remaining}"
            if found.remaining
            else "All content successfully removed",
        ),
        cond(
            "NamespaceFinalizersRemaining",
            bool(found.finalizers),
            "SomeFinalizersRemain" if found.finalizers else "ContentHasNoFinalizers",
            f"Some content in the namespace has finalizers remaining: {finalizers}"
            if found.finalizers
            else "All content-preserving finalizers finished",
        ),
    ]


def merge_conditions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """``new`` replaces conditions of the same type; lastTransitionTime is kept when the
    status did not change (so an unchanged pass writes nothing)."""
    by_type = {c.get("type"): c for c in old}
    out = [c for c in old if c.get("type") not in {n["type"] for n in new}]
    for cond in new:
        previous = by_type.get(cond["type"])
        if previous is not None and previous.get("status") == cond["status"]:
            cond = dict(cond, lastTransitionTime=previous.get("lastTransitionTime"))
        out.append(cond)
    return out
