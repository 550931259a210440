"""Per-kind write strategies: what the server itself sets on create, update and status update.

Kubernetes' registry strategies (PrepareForCreate, PrepareForUpdate, the status strategy)
decide which parts of a request the server keeps: system metadata is the server's, status is
reset on create and preserved on a spec update, spec is preserved on a status update, and
metadata.generation counts spec changes. These are pure functions over plain dicts.
"""

from __future__ import annotations

import copy
import datetime
import random
import time
import uuid
from typing import Any

from kybern.api import kinds
from kybern.apiserver.services import fields as service_fields

# Kinds whose status a client may set on create (the kubelet registers a Node with status).
_STATUS_ON_CREATE = {"Node", "Event", "PersistentVolume"}
# Kubernetes keeps these on a plain update; only the server changes them.
_SYSTEM_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


_last_stamp: tuple[int, str] = (0, "")
_random = random.Random()


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (seconds, UTC), formatted once per second."""
    global _last_stamp
    second = int(time.time())
    if _last_stamp[0] != second:
        stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _last_stamp = (second, stamp)
    return _last_stamp[1]


def new_uid() -> str:
    """A random (version 4) UUID. uids identify objects, they are not secrets, so a seeded
    PRNG is enough and saves a system call per create."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


def tracks_generation(info: kinds.ResourceInfo, obj: dict[str, Any]) -> bool:
    return info.has_status or "spec" in obj


def prepare_for_create(info: kinds.ResourceInfo, obj: dict[str, Any]) -> None:
    meta = obj.setdefault("metadata", {})
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    for name in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(name, None)
    if tracks_generation(info, obj):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if info.has_status and info.kind not in _STATUS_ON_CREATE:
        # Clients do not set status on create; defaulting then fills the initial one
        # (a pod's phase and QoS class, a namespace's phase, ...).
        obj["status"] = {}


def prepare_for_update(info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A write to the main resource: status and system metadata stay the server's."""
    meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    for name in _SYSTEM_META:
        if name == "uid" and meta.get(name):
            continue  # validation reports a changed value as immutable
        # creationTimestamp: Kubernetes ignores the client's value (clients re-serialise it,
        # e.g. the Python client sends "+00:00" for "Z"), as BeforeUpdate does.
        if name in old_meta:
            meta[name] = old_meta[name]
        else:
            meta.pop(name, None)
    if info.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if info.kind == "Namespace":
        # spec.finalizers only change through namespaces/<name>/finalize.
        new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers", [])
    if info.kind == "Service" and not info.group:
        # Kept allocations, synced clusterIP(s), fields a type change drops (Service REST).
        service_fields.prepare_update(new, old)
    if tracks_generation(info, new) and _spec_changed(new, old):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1


def prepare_for_status_update(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A write to /status: only status comes from the request (and the request's
    resourceVersion, which the caller uses as the precondition)."""
    merged = copy.deepcopy(old)
    if "status" in new:
        merged["status"] = copy.deepcopy(new["status"])
    else:
        merged.pop("status", None)
    return merged


def prepare_for_finalize(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """namespaces/<name>/finalize: only spec.finalizers comes from the request."""
    merged = copy.deepcopy(old)
    finalizers = (new.get("spec") or {}).get("finalizers") or []
    merged.setdefault("spec", {})["finalizers"] = finalizers
    return merged


def _spec_changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    ignored = ("metadata", "status", "apiVersion", "kind")
    keys = (set(new) | set(old)) - set(ignored)
    return any(new.get(k) != old.get(k) for k in keys)
