"""The scale subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets, StatefulSets and
ReplicationControllers: GET, PUT and PATCH act on spec.replicas only."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from kybern.api import kinds, labels
from kybern.apiserver import errors, registry
from kybern.apiserver.handlers import context, patch


def to_scale(info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    if info.kind == "ReplicationController":
        selector_text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    else:
        selector_text = str(labels.from_label_selector(selector)) if selector else ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": int(spec.get("replicas", 0))},
        "status": {"replicas": int(status.get("replicas", 0)), "selector": selector_text},
    }


def _replicas(scale: Any) -> int:
    spec = scale.get("spec") if isinstance(scale, dict) else None
    replicas = (spec or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.bad_request("spec.replicas: the scale's replicas must be an integer")
    if replicas < 0:
        raise errors.StatusError(
            422,
            "Invalid",
            f'Scale.autoscaling "{scale.get("metadata", {}).get("name", "")}" is invalid: spec.replicas: '
            f"Invalid value: {replicas}: must be greater than or equal to 0",
            details={
                "causes": [
                    {
                        "reason": "FieldValueInvalid",
                        "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
                        "field": "spec.replicas",
                    }
                ]
            },
        )
    return replicas


def _with_replicas(obj: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new.setdefault("spec", {})["replicas"] = _replicas(scale)
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    new["metadata"]["resourceVersion"] = rv or obj["metadata"].get("resourceVersion")
    return new


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    info = call.info
    if call.method == "GET":
        obj = registry.to_version(info, await call.registry.get(info, call.namespace, call.name))
        return 200, to_scale(info, obj)
    if call.method == "PUT":
        scale = context.object_body_any(body)

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            return _with_replicas(obj, scale)

    elif call.method == "PATCH":
        scale_patch = patch.patch_function(content_type, body)

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            return _with_replicas(obj, scale_patch(to_scale(info, obj)))

    else:
        raise errors.method_not_allowed()
    updated = await call.registry.patch(
        info,
        call.namespace,
        call.name,
        change,
        dry_run=call.dry_run,
        subresource="scale",  # the managedFields entry names it, as Kubernetes does
        field_manager=call.field_manager,
    )
    return 200, to_scale(info, registry.to_version(info, updated))


async def handle(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, operation, await context.read_body(req))
