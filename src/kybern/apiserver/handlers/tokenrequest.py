"""``serviceaccounts/<name>/token``: a TokenRequest answered with a signed ServiceAccount token.

What ``kubectl create token`` and the kubelet (projected ``serviceAccountToken`` volumes) POST:
an authentication.k8s.io/v1 TokenRequest ``{spec: {audiences, expirationSeconds,
boundObjectRef}}``. As kube-apiserver's TokenREST: the name and namespace in the body, when
given, must match the URL (422); the ServiceAccount must exist (404); audiences default to the
API server's; ``expirationSeconds`` defaults to 3600 and may not be under 600 s (422); a bound
object (Pod, Secret or Node, core group) must exist (404), carry the given uid (409) and, for
a pod, run as this ServiceAccount (400). A pod-bound token asking for exactly 3607 s is
extended to a year with ``warnafter`` (see kybern.apiserver.satokens). Nothing is stored; the
answer is the request with ``status: {token, expirationTimestamp}``, 201 Created.
"""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from kybern.api import errors as api_errors
from kybern.api import kinds
from kybern.apiserver import errors, registry, satokens
from kybern.apiserver.handlers import context

API_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
GROUP = "authentication.k8s.io"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # Kubernetes' MinTokenAgeSec
MAX_EXPIRATION = 1 << 32
_BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    if call.method != "POST":
        raise errors.method_not_allowed()
    issuer = satokens.issuer_for(call.registry)
    if issuer is None:
        raise errors.internal("this server has no service account signing key")
    request = _request(call, body)
    account = await call.registry.get(call.info, call.namespace, call.name)
    spec = _spec(request, issuer)
    now = int(issuer.clock())
    meta = request["metadata"]
    meta["name"], meta["namespace"] = call.name, call.namespace  # checked equal, or unset
    meta["creationTimestamp"] = _rfc3339(now)
    _validate(spec)
    binding = await _binding(call, account, spec.get("boundObjectRef"))
    expiration, warn_after = _lifetime(issuer, spec, binding)
    token = issuer.issue(
        binding,
        audiences=spec["audiences"],
        expiration_seconds=expiration,
        warn_after=warn_after,
        now=now,
    )
    request["status"] = {
        "token": token,
        "expirationTimestamp": _rfc3339(now + int(spec["expirationSeconds"])),
    }
    return 201, request


async def handle(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, operation, await context.read_body(req))


# -- the request -----------------------------------------------------------------------------


def _request(call: context.Call, body: Any) -> dict[str, Any]:
    request = context.object_body_any(body)
    api_version = request.setdefault("apiVersion", API_VERSION)
    kind = request.setdefault("kind", KIND)
    if api_version != API_VERSION or kind != KIND:
        raise errors.bad_request(
            f"not a TokenRequest object: {api_version}, Kind={kind} (expected {API_VERSION} {KIND})"
        )
    meta = request.get("metadata")
    if meta is None:
        meta = request["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata: the TokenRequest's metadata must be a JSON object")
    causes = []
    if meta.get("name") and meta["name"] != call.name:
        causes.append(
            api_errors.invalid(
                "metadata.name", meta["name"], "must match the service account name if specified"
            )
        )
    if meta.get("namespace") and meta["namespace"] != call.namespace:
        causes.append(
            api_errors.invalid(
                "metadata.namespace",
                meta["namespace"],
                "must match the service account namespace if specified",
            )
        )
    if causes:
        raise errors.invalid(KIND, call.name, causes, GROUP)
    request.pop("status", None)
    return request


def _spec(request: dict[str, Any], issuer: satokens.Issuer) -> dict[str, Any]:
    """The spec, type-checked (400, as a decode error) and defaulted."""
    spec = request.get("spec")
    if spec is None:
        spec = request["spec"] = {}
    if not isinstance(spec, dict):
        raise errors.bad_request("spec: the TokenRequest's spec must be a JSON object")
    audiences = spec.get("audiences")
    if audiences is not None and (
        not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences)
    ):
        raise errors.bad_request("spec.audiences: must be a list of strings")
    if not audiences:
        spec["audiences"] = list(issuer.api_audiences)
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        spec["expirationSeconds"] = DEFAULT_EXPIRATION
    elif isinstance(expiration, bool) or not isinstance(expiration, int):
        raise errors.bad_request("spec.expirationSeconds: must be an integer")
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef: must be an object")
    spec.setdefault("boundObjectRef", None)  # no omitempty in Kubernetes' type
    return spec


def _validate(spec: dict[str, Any]) -> None:
    expiration = int(spec["expirationSeconds"])
    causes = []
    if expiration < MIN_EXPIRATION:
        causes.append(
            api_errors.invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 10 minutes",
            )
        )
    elif expiration > MAX_EXPIRATION:
        causes.append(
            api_errors.invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            )
        )
    if causes:
        raise errors.invalid(KIND, "", causes, GROUP)


# -- the bound object --------------------------------------------------------------------------


async def _binding(
    call: context.Call, account: dict[str, Any], ref: dict[str, Any] | None
) -> satokens.Binding:
    meta = account["metadata"]
    binding = satokens.Binding(
        namespace=call.namespace, account=satokens.Ref(meta["name"], str(meta.get("uid") or ""))
    )
    if ref is None:
        return binding
    kind, api_version = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    resource = _BINDABLE.get(kind) if not group else None
    if resource is None:
        shown = f"{api_version}, Kind={kind}" if api_version else f"/, Kind={kind}"
        raise errors.bad_request(f"cannot bind token to object of type {shown}")
    name = str(ref.get("name") or "")
    obj = await _get(call, resource, name)
    obj_ref = satokens.Ref(name, str(obj["metadata"].get("uid") or ""))
    if ref.get("uid") and ref["uid"] != obj_ref.uid:
        raise errors.conflict(
            kind,
            name,
            "",
            f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
            "record. The object might have been deleted and then recreated",
        )
    if kind == "Pod":
        return await _pod_binding(call, binding, obj, obj_ref)
    if kind == "Secret":
        return satokens.Binding(binding.namespace, binding.account, secret=obj_ref)
    return satokens.Binding(binding.namespace, binding.account, node=obj_ref)


async def _pod_binding(
    call: context.Call, binding: satokens.Binding, pod: dict[str, Any], ref: satokens.Ref
) -> satokens.Binding:
    spec = pod.get("spec") or {}
    if spec.get("serviceAccountName", "") != call.name:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{call.name}" to pod running with '
            "different serviceaccount name."
        )
    node = None
    node_name = spec.get("nodeName")
    if node_name:
        info = kinds.lookup("", "v1", "nodes")
        assert info is not None
        found = call.registry.cache.resource(info.storage_resource).objects.get(
            registry.storage_key(info, "", node_name)
        )
        if found is not None:  # a deleted node just leaves the claim out, as in Kubernetes
            node = satokens.Ref(node_name, str(found["metadata"].get("uid") or ""))
    return satokens.Binding(binding.namespace, binding.account, pod=ref, node=node)


async def _get(call: context.Call, resource: str, name: str) -> dict[str, Any]:
    info = kinds.lookup("", "v1", resource)
    assert info is not None
    return await call.registry.get(info, call.namespace if info.namespaced else "", name)


def _lifetime(
    issuer: satokens.Issuer, spec: dict[str, Any], binding: satokens.Binding
) -> tuple[int, int]:
    """(token lifetime, warnafter): kube-apiserver's extension of warn-only pod tokens."""
    expiration = int(spec["expirationSeconds"])
    audiences = set(spec["audiences"])
    if (
        binding.pod is not None
        and expiration == satokens.WARN_ONLY_EXPIRATION
        and audiences <= set(issuer.api_audiences)
    ):
        return satokens.EXTENDED_EXPIRATION, expiration
    return expiration, 0


def _rfc3339(seconds: int) -> str:
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
