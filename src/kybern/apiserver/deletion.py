"""Deletion as Kubernetes does it: preconditions, finalizers, propagation policy, graceful pods.

An object with finalizers (its own, or ``orphan``/``foregroundDeletion`` added for the
requested propagation) is only marked: ``deletionTimestamp`` is set and the object stays until
the last finalizer is removed (the registry's update then deletes it). A pod bound to a node is
deleted gracefully: marked with ``deletionGracePeriodSeconds`` for its kubelet to stop it and
delete it with grace 0. Everything else is removed from the store at once.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kybern.api import kinds
from kybern.apiserver import admission, errors, query, registry

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_POLICIES = ("Orphan", "Background", "Foreground")
# Kinds whose DELETE answers with the object itself rather than a Success Status (the stores
# with ReturnDeletedObject; the official clients' delete methods decode these as the kind).
_RETURNS_OBJECT = {
    "pods",
    "namespaces",
    "services",
    "customresourcedefinitions",
    "persistentvolumes",
    "persistentvolumeclaims",
    "podtemplates",
    "resourcequotas",
    "serviceaccounts",
    "storageclasses",
}


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


def parse_options(params: Mapping[str, str], body: dict[str, Any] | None) -> DeleteOptions:
    body = body or {}
    if not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    grace = body.get("gracePeriodSeconds", query.parse_int(params, "gracePeriodSeconds"))
    policy = body.get("propagationPolicy", params.get("propagationPolicy"))
    orphan = body.get("orphanDependents")
    if orphan is None and "orphanDependents" in params:
        orphan = query.parse_bool(params, "orphanDependents")
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    if policy is not None and policy not in _POLICIES:
        raise errors.bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
        )
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        if isinstance(grace, int) and not isinstance(grace, bool) and grace < 0:
            grace = 1  # Kubernetes turns a negative grace period into 1 second
        else:
            raise errors.bad_request(f"gracePeriodSeconds: invalid value {grace!r}")
    pre = body.get("preconditions") or {}
    dry = body.get("dryRun") or []
    if dry and dry != ["All"]:
        raise errors.bad_request(f'invalid dry run value {dry!r}: supported values: "All"')
    return DeleteOptions(
        grace_period=grace,
        propagation=policy,
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
        dry_run=bool(dry) or query.dry_run(params),
    )


async def delete(
    reg: registry.Registry,
    info: kinds.ResourceInfo,
    namespace: str,
    name: str,
    options: DeleteOptions,
) -> registry.DeleteResult:
    for _ in range(registry.GUARANTEED_UPDATE_TRIES):
        current = registry.to_version(info, await reg.get(info, namespace, name))
        _check_preconditions(info, current, options)
        await reg.admit.on_delete(admission.Request(info, dry_run=options.dry_run), current)
        try:
            return await _delete_once(reg, info, current, options)
        except errors.StatusError as exc:
            if exc.reason != "Conflict" or options.resource_version:
                raise
    raise errors.conflict(info.plural, name, info.group)


async def _delete_once(
    reg: registry.Registry,
    info: kinds.ResourceInfo,
    current: dict[str, Any],
    options: DeleteOptions,
) -> registry.DeleteResult:
    expected = registry.revision_of(current)
    marked = _mark(info, current, options)
    if marked is None:
        if options.dry_run:
            return registry.DeleteResult(current, True)
        return await reg.delete_now(info, current, expected)
    if options.dry_run:
        return registry.DeleteResult(marked, False)
    if marked == current:
        return registry.DeleteResult(current, False)
    return registry.DeleteResult(await reg.store_update(info, marked, expected), False)


def _mark(
    info: kinds.ResourceInfo, current: dict[str, Any], options: DeleteOptions
) -> dict[str, Any] | None:
    """The object marked for deletion, or None when it can go at once."""
    obj = copy.deepcopy(current)
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if options.propagation == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    elif options.propagation == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    if options.propagation in ("Background", "Foreground"):
        finalizers = [f for f in finalizers if f != ORPHAN]
    if options.propagation in ("Background", "Orphan"):
        finalizers = [f for f in finalizers if f != FOREGROUND]
    grace = _grace_period(info, obj, options)
    terminating = info.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))
    if not finalizers and grace == 0 and not terminating:
        return None
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    previous_grace = meta.get("deletionGracePeriodSeconds")
    if not meta.get("deletionTimestamp") or (previous_grace is not None and grace < previous_grace):
        deadline = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
        meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["deletionGracePeriodSeconds"] = grace
    if info.kind == "Namespace":
        obj.setdefault("status", {})["phase"] = "Terminating"
    return obj


def _grace_period(info: kinds.ResourceInfo, obj: dict[str, Any], options: DeleteOptions) -> int:
    """Only pods bound to a node terminate gracefully; everything else has grace 0."""
    if info.kind != "Pod":
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if options.grace_period is not None:
        return options.grace_period
    return int(spec.get("terminationGracePeriodSeconds", 30))


def _check_preconditions(
    info: kinds.ResourceInfo, obj: dict[str, Any], options: DeleteOptions
) -> None:
    meta = obj["metadata"]
    if options.uid and options.uid != meta.get("uid"):
        raise errors.conflict(
            info.plural,
            meta["name"],
            info.group,
            f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: {meta.get('uid')}",
        )
    if options.resource_version and options.resource_version != meta.get("resourceVersion"):
        raise errors.conflict(
            info.plural,
            meta["name"],
            info.group,
            "Precondition failed: ResourceVersion in precondition: "
            f"{options.resource_version}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


def response(info: kinds.ResourceInfo, result: registry.DeleteResult) -> dict[str, Any]:
    """What DELETE answers: the object for kinds that return it, else a Success Status."""
    if not result.deleted or info.plural in _RETURNS_OBJECT:
        return result.obj
    meta = result.obj.get("metadata") or {}
    details: dict[str, Any] = {
        "name": meta.get("name", ""),
        "kind": info.plural,
        "uid": meta.get("uid", ""),
    }
    if info.group:
        details["group"] = info.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
