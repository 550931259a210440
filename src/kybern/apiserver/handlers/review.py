"""Access reviews and ``whoami``: create-only resources that are answered, never stored.

``kubectl auth can-i`` POSTs a SelfSubjectAccessReview (``--list``: a SelfSubjectRulesReview),
``kubectl auth whoami`` a SelfSubjectReview; controllers and webhooks use SubjectAccessReview
and LocalSubjectAccessReview. The answer is the posted object with its ``status`` filled in,
201 Created, as kube-apiserver does.

There is no authorization policy yet: every authenticated user may do everything, and the
answers say so in ``status.reason``. When RBAC arrives, ``_decide`` is the one place to ask it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.api import errors as api_errors
from kybern.apiserver import authn, errors
from kybern.apiserver.handlers import context

NO_POLICY = "kybern: no authorization policy yet, every authenticated user may do everything"
_ALL_RULES: dict[str, Any] = {
    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    "incomplete": False,
}


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    if call.method != "POST" or call.name or call.subresource:
        raise errors.method_not_allowed()
    body = context.object_body(call.info, body)
    body.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    user = call.user
    kind = call.info.kind
    if kind == "SelfSubjectReview":
        body["status"] = {"userInfo": user.to_dict()}
    elif kind == "SelfSubjectRulesReview":
        body["status"] = dict(_ALL_RULES)
    else:
        _validate(kind, body, call.namespace)
        body["status"] = _decide(user, body.get("spec") or {})
    return 201, body


async def handle(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, operation, await context.read_body(req))


def _decide(user: authn.UserInfo, spec: dict[str, Any]) -> dict[str, Any]:
    """The authorizer's answer for one request attributes spec (allowed for everyone)."""
    del user, spec  # no policy yet
    return {"allowed": True, "reason": NO_POLICY}


def _validate(kind: str, body: dict[str, Any], namespace: str) -> None:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes: list[api_errors.Cause] = []
    if resource is None and non_resource is None:
        causes.append(
            api_errors.invalid(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    elif resource is not None and non_resource is not None:
        causes.append(
            api_errors.invalid(
                "spec.nonResourceAttributes",
                non_resource,
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview") and not (
        spec.get("user") or spec.get("groups")
    ):
        causes.append(
            api_errors.invalid("spec.user", "", "at least one of user or group must be specified")
        )
    if kind == "LocalSubjectAccessReview":
        causes.extend(_local_causes(body, namespace, non_resource))
    if causes:
        name = (body.get("metadata") or {}).get("name", "")
        raise errors.invalid(kind, name, causes, group="authorization.k8s.io")


def _local_causes(
    body: dict[str, Any], namespace: str, non_resource: object
) -> list[api_errors.Cause]:
    causes = []
    if non_resource is not None:
        causes.append(
            api_errors.invalid(
                "spec.nonResourceAttributes", non_resource, "disallowed on this kind of request"
            )
        )
    attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
    if isinstance(attributes, dict) and attributes.get("namespace", "") != namespace:
        raise errors.bad_request(
            f"spec.resourceAttributes.namespace must match namespace: {namespace}"
        )
    return causes
