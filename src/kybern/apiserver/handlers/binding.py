"""pods/binding: the scheduler's way to assign a pod to a node (POST a Binding)."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from kybern.apiserver import errors, strategy
from kybern.apiserver.handlers import context


def _bind(obj: dict[str, Any], node: str) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    name = obj["metadata"]["name"]
    if obj["metadata"].get("deletionTimestamp"):
        raise errors.conflict(
            "pods", name, "", "pod is being deleted, cannot be assigned to a host"
        )
    if spec.get("nodeName"):
        raise errors.conflict(
            "pods", name, "", f'pod {name} is already assigned to node "{spec["nodeName"]}"'
        )
    new = copy.deepcopy(obj)
    new["spec"]["nodeName"] = node
    status = new.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": strategy.now_rfc3339(),
        }
    )
    status["conditions"] = conditions
    return new


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    if call.method != "POST":
        raise errors.method_not_allowed()
    body = context.object_body_any(body)
    name = call.name or (body.get("metadata") or {}).get("name", "")
    target = body.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not node or not isinstance(node, str):
        raise errors.StatusError(
            422,
            "Invalid",
            f'Binding "{name}" is invalid: target.name: Required value',
            details={
                "name": name,
                "kind": "Binding",
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": "target.name",
                    }
                ],
            },
        )
    if call.name and (body.get("metadata") or {}).get("name", call.name) != call.name:
        raise errors.bad_request("the binding's name does not match the pod's name in the URL")
    await call.registry.system_update(
        call.info,
        call.namespace,
        name,
        lambda obj: _bind(obj, node),
        dry_run=call.dry_run,
    )
    return 201, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }


async def handle(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, operation, await context.read_body(req))
