"""Resource paths: /api/v1/... and /apis/<group>/<version>/... parsed into a handler call.

Kubernetes' path grammar:
  <prefix>/[watch/]<resource>[/<name>[/<subresource>]]                   cluster scope, or all
                                                                        namespaces for lists
  <prefix>/[watch/]namespaces/<ns>/<resource>[/<name>[/<subresource>]]  namespaced
  <prefix>/namespaces/<name>/(status|finalize)                          namespace subresources
Every unknown group, version, resource or subresource is a 404 Status; a verb the resource
does not serve is a 405.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kybern.api import kinds
from kybern.apiserver import codec, discovery, errors, registry
from kybern.apiserver.handlers import (
    binding,
    context,
    create,
    delete,
    eviction,
    get,
    patch,
    podproxy,
    review,
    scale,
    tokenrequest,
    update,
)
from kybern.apiserver.handlers import list as list_handler

Handler = Callable[[context.Request], Awaitable[web.StreamResponse]]
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


def parse(
    reg: registry.Registry, request: web.Request, group: str, version: str, rest: list[str]
) -> context.Request:
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3 or not all(rest):
        raise errors.path_not_found(request.path)
    plural, name = rest[0], rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    info = kinds.lookup(group, version, plural)
    if info is None and group == "" and plural == "bindings" and namespace:
        info = kinds.lookup("", "v1", "pods")
        subresource = "binding"
    if info is None or (namespace and not info.namespaced):
        raise errors.path_not_found(request.path)
    if subresource and subresource not in info.subresources:
        raise errors.path_not_found(request.path)
    return context.Request(request, reg, info, namespace, name, subresource, watch)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the HTTP handler and the transport-free operation behind it."""

    handle: Handler
    operation: context.Operation | None  # None: HTTP only (a watch)


_STATUS_ROUTES = {
    "GET": Route(get.handle, get.operation),
    "PUT": Route(update.handle, update.operation),
    "PATCH": Route(patch.handle, patch.operation),
}
_COLLECTION_ROUTES = {
    "GET": ("list", Route(list_handler.handle, list_handler.operation)),
    "POST": ("create", Route(create.handle, create.operation)),
    "DELETE": ("deletecollection", Route(delete.handle_collection, delete.collection_operation)),
}
_OBJECT_ROUTES = {
    "GET": ("get", Route(get.handle, get.operation)),
    "PUT": ("update", Route(update.handle, update.operation)),
    "PATCH": ("patch", Route(patch.handle, patch.operation)),
    "DELETE": ("delete", Route(delete.handle, delete.operation)),
}


def route(req: context.Request, method: str) -> Route:
    """The route for a parsed request; 404/405 Status errors for what is not served."""
    if req.info.virtual:  # access reviews, whoami: create-only, answered and never stored
        return Route(review.handle, review.operation)
    if req.subresource == "scale":
        return Route(scale.handle, scale.operation)
    if req.subresource == "binding":
        return Route(binding.handle, binding.operation)
    if req.subresource == "eviction":
        return Route(eviction.handle, eviction.operation)
    if req.subresource == "token" and req.info.plural == "serviceaccounts":
        return Route(tokenrequest.handle, tokenrequest.operation)
    if req.subresource in podproxy.SUBRESOURCES and req.info.plural == "pods":
        return Route(podproxy.handle, None)  # streamed to the kubelet: HTTP only
    if req.subresource in ("status", "finalize"):
        if method not in _STATUS_ROUTES:
            raise errors.method_not_allowed()
        return _STATUS_ROUTES[method]
    if req.subresource:
        raise errors.StatusError(
            404, "NotFound", f"the {req.subresource} subresource is not served by this server yet"
        )
    if req.name and req.watch:
        verb, found = "watch", Route(_watch_one, None)
    else:
        verb, found = (_OBJECT_ROUTES if req.name else _COLLECTION_ROUTES).get(method, ("", None))  # type: ignore[assignment]
    if found is None or verb not in req.info.verbs:
        raise errors.method_not_allowed()
    if req.info.namespaced and not req.namespace and (req.name or method != "GET"):
        raise errors.path_not_found("")
    return found


def pick(req: context.Request) -> Handler:
    return route(req, req.http.method).handle


async def _watch_one(req: context.Request) -> web.StreamResponse:
    """/watch/.../<name>: a watch of the collection narrowed to one name."""
    selector = f"metadata.name={req.name}"
    field_selector = req.http.query.get("fieldSelector")
    query = dict(
        req.http.query, fieldSelector=f"{field_selector},{selector}" if field_selector else selector
    )
    request = req.http.clone(rel_url=req.http.rel_url.with_query(query))
    return await list_handler.handle(
        context.Request(request, req.registry, req.info, req.namespace, "", "", True)
    )


def discovery_for(request: web.Request, group: str, version: str) -> web.Response:
    if kinds.resources_for(group, version):
        return codec.raw_json(discovery.legacy_resource_list(group, version))
    raise errors.path_not_found(request.path)


async def core(request: web.Request) -> web.StreamResponse:
    reg = request.app[context.REGISTRY]
    tail = request.match_info.get("tail", "").strip("/")
    parts = tail.split("/") if tail else []
    if not parts:
        return _discovery_root(request, core=True)
    version, rest = parts[0], parts[1:]
    if not rest:
        return discovery_for(request, "", version)
    if version != "v1":
        raise errors.path_not_found(request.path)
    req = parse(reg, request, "", version, rest)
    return await pick(req)(req)


async def groups(request: web.Request) -> web.StreamResponse:
    reg = request.app[context.REGISTRY]
    tail = request.match_info.get("tail", "").strip("/")
    parts = tail.split("/") if tail else []
    if not parts:
        return _discovery_root(request, core=False)
    group = parts[0]
    if len(parts) == 1:
        described = discovery.api_group(group)
        if described is None:
            raise errors.path_not_found(request.path)
        return codec.response(described)
    version, rest = parts[1], parts[2:]
    if not rest:
        return discovery_for(request, group, version)
    req = parse(reg, request, group, version, rest)
    return await pick(req)(req)


def _discovery_root(request: web.Request, *, core: bool) -> web.Response:
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return codec.raw_json(discovery.aggregated(core), content_type=discovery.AGGREGATED_TYPE)
    return codec.raw_json(discovery.legacy_api() if core else discovery.legacy_apis())
