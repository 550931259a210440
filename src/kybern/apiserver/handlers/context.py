"""What every resource handler receives.

``Request`` is an HTTP request parsed by kybern.apiserver.routing. ``Call`` is the same request
decoded, independent of the transport: every verb module has an ``operation(call, body,
content_type) -> (status, object)`` over a Call, which the HTTP ``handle`` (decode the body,
run the operation, encode the answer) and the in-process API (kybern.apiserver.local) share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kybern.api import kinds, managedfields
from kybern.apiserver import authn, codec, errors, registry
from kybern.apiserver import query as queries

REGISTRY = web.AppKey("registry", registry.Registry)


@dataclass(frozen=True, slots=True)
class Request:
    http: web.Request
    registry: registry.Registry
    info: kinds.ResourceInfo
    namespace: str
    name: str
    subresource: str
    watch: bool = False

    @property
    def query(self) -> Any:
        return self.http.query


@dataclass(frozen=True, slots=True)
class Call:
    """One decoded request: everything an operation needs, whatever the transport."""

    registry: registry.Registry
    info: kinds.ResourceInfo
    namespace: str
    name: str
    subresource: str
    method: str
    query: Mapping[str, str]
    field_manager: str
    user: authn.UserInfo

    @property
    def dry_run(self) -> bool:
        return queries.dry_run(self.query)


Answer = tuple[int, Any]
Operation = Callable[[Call, Any, str], Awaitable[Answer]]


def call_of(req: Request) -> Call:
    return Call(
        registry=req.registry,
        info=req.info,
        namespace=req.namespace,
        name=req.name,
        subresource=req.subresource,
        method=req.http.method,
        query=req.http.query,
        field_manager=field_manager(req),
        user=req.http.get(authn.USER_KEY, authn.ANONYMOUS),
    )


def object_body(info: kinds.ResourceInfo, body: Any) -> dict[str, Any]:
    """A decoded body that must be one object of the endpoint's kind."""
    obj = object_body_any(body)
    check_type(info, obj)
    return obj


def object_body_any(body: Any) -> dict[str, Any]:
    """A decoded body that must be a JSON object (of a kind the endpoint does not fix)."""
    if body is None:
        raise errors.bad_request("the request body is empty: send a JSON object")
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the request body must be a JSON object, not {type(body).__name__}"
        )
    return body


async def read_body(req: Request) -> Any:
    """The request body decoded per its Content-Type; None when there is none."""
    raw = await codec.read_body(req.http)
    if not raw.strip():
        return None
    return codec.decode(raw, codec.media_type(req.http))


async def respond(req: Request, operation: Operation, body: Any = None) -> web.Response:
    status, obj = await operation(call_of(req), body, codec.media_type(req.http))
    return codec.response(obj, status=status)


def field_manager(req: Request) -> str:
    """The write's field manager: ``fieldManager``, else from the User-Agent (Kubernetes)."""
    return managedfields.manager_name(
        req.query.get("fieldManager"), req.http.headers.get("User-Agent")
    )


async def read_object(req: Request) -> dict[str, Any]:
    """The request body as an object of the endpoint's kind (apiVersion and kind defaulted
    from the URL, refused when they name another kind)."""
    body = await codec.read_object(req.http)
    check_type(req.info, body)
    return body


def check_type(info: kinds.ResourceInfo, body: dict[str, Any]) -> None:
    api_version = body.setdefault("apiVersion", info.api_version)
    kind = body.setdefault("kind", info.kind)
    if api_version != info.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({info.api_version})"
        )
    if kind != info.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
        )
