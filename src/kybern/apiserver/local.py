"""The in-process API: what ``kybern.client``'s in-process transport calls instead of HTTP.

Components running inside ``kybern server`` (controllers, scheduler, simulated nodes) talk to
the API through ``kybern.client`` like any other client, but without sockets, TLS or JSON: a
request arrives here as (method, path, query, decoded body, content type, user) and goes
through the same path grammar (``routing.parse``), the same verb table, and the same registry,
listing, deletion and watch-cache code as an HTTP request, so defaulting, validation and
admission run unchanged. Errors come back as the same ``Status`` objects.

Answers may be objects shared with the watch cache (a GET, a LIST's items, watch events):
they are immutable by convention and the client copies them before handing them out.
Request bodies become the server's to change (the registry defaults them in place): the client
passes a copy.

Requests take the same route (``routing.route``) to the same verb operation
(``handlers/<verb>.operation``) as over HTTP, under the same field-validation scope; watches
use the same ``watch.batches`` stream. Only decoding and encoding differ.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, cast

from aiohttp import web

from kybern.api import errors as api_errors
from kybern.api import kinds, managedfields
from kybern.apiserver import (
    authn,
    errors,
    fieldvalidation,
    query,
    registry,
    routing,
    watchcache,
)
from kybern.apiserver import query as queries
from kybern.apiserver import watch as watching  # `watch` is LocalAPI's method name
from kybern.apiserver.handlers import context
from kybern.storage import errors as storage_errors

log = logging.getLogger(__name__)
Query = Mapping[str, str | Sequence[str]]
Answer = tuple[int, Any]


class User(Protocol):
    """The caller as the client names it (kybern.client.transport.User has this shape)."""

    @property
    def name(self) -> str: ...

    @property
    def uid(self) -> str: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


class _Path:
    """Stands in for the aiohttp request ``routing.parse`` reads the path from."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def authenticate(user: User) -> authn.UserInfo:
    """In-process callers are trusted to name themselves (they run inside the server);
    a nameless one is refused like an HTTP request without credentials."""
    if not user.name:
        raise errors.StatusError(401, "Unauthorized", "Unauthorized")
    groups = tuple(user.groups)
    if authn.AUTHENTICATED_GROUP not in groups:
        groups = (*groups, authn.AUTHENTICATED_GROUP)
    return authn.UserInfo(name=user.name, uid=user.uid, groups=groups)


def flat_query(q: Query) -> dict[str, str]:
    """One value per parameter (the first), as ``request.query.get`` would give."""
    out: dict[str, str] = {}
    for key, value in q.items():
        if isinstance(value, str):
            out[key] = value
        elif value:
            out[key] = str(value[0])
    return out


def parse_target(reg: registry.Registry, path: str) -> context.Request:
    """/api/v1/... or /apis/<group>/<version>/... through the HTTP path grammar."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.path_not_found(path)
    return routing.parse(reg, cast(web.Request, _Path(path)), group, version, rest)


def status_of(exc: BaseException) -> errors.StatusError:
    """The Status an HTTP client would have got for this failure (app.status_errors)."""
    if isinstance(exc, errors.StatusError):
        return exc
    if isinstance(exc, api_errors.APIError | storage_errors.StorageError):
        return errors.from_exception(exc)
    if isinstance(exc, TimeoutError):
        return errors.StatusError(504, "Timeout", "the request timed out waiting for storage")
    log.exception("internal error serving an in-process request", exc_info=exc)
    return errors.internal(f"{type(exc).__name__}: {exc}")


class LocalAPI:
    """Requests and watches against one ``Registry``, answered with objects."""

    def __init__(self, reg: registry.Registry) -> None:
        self.registry = reg

    async def handle(
        self,
        method: str,
        path: str,
        query: Query,
        body: Any,
        content_type: str,
        user: User,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request through the same route and operation as over HTTP (handlers/)."""
        method = method.upper()
        try:
            user_info = authenticate(user)
            req = parse_target(self.registry, path)
            q = flat_query(query)
            if req.watch or (not req.name and method == "GET" and queries.parse_bool(q, "watch")):
                raise errors.bad_request("watch through LocalAPI.watch, not handle")
            found = routing.route(req, method)
            if found.operation is None:
                raise errors.method_not_allowed()
            agent = (headers or {}).get("User-Agent")
            call = context.Call(
                registry=self.registry,
                info=req.info,
                namespace=req.namespace,
                name=req.name,
                subresource=req.subresource,
                method=method,
                query=q,
                field_manager=managedfields.manager_name(q.get("fieldManager"), agent),
                user=user_info,
            )
            # Warnings travel as HTTP response headers; in process they are not returned.
            with fieldvalidation.scope(method, content_type, q.get("fieldValidation", "")):
                return await found.operation(call, body, content_type)
        except Exception as exc:
            status = status_of(exc)
            return status.code, status.status()

    # -- watch -------------------------------------------------------------------------

    async def watch(self, path: str, query_: Query, user: User) -> AsyncIterator[tuple[str, Any]]:
        """(type, object) pairs of a watch, ending with an ERROR pair when refused."""
        try:
            authenticate(user)
            req = parse_target(self.registry, path)
            q = flat_query(query_)
            if req.name:  # /watch/.../<name>: the collection narrowed to one name
                by_name = f"metadata.name={req.name}"
                selector = q.get("fieldSelector")
                q["fieldSelector"] = f"{selector},{by_name}" if selector else by_name
            if req.subresource or "watch" not in req.info.verbs:
                raise errors.method_not_allowed()
            opts = query.list_options(q)
            stream, replay = await watching.open_stream(
                self.registry, req.info, req.namespace, opts
            )
        except Exception as exc:
            yield "ERROR", status_of(exc).status()
            return
        info = req.info
        try:
            batches = watching.batches(self.registry, stream, replay, watching.deadline_for(opts))
            async for batch in batches:
                for event in batch:
                    if event.type == watchcache.BOOKMARK:
                        initial_end = event.key == watching.INITIAL_END
                        yield "BOOKMARK", _bookmark(info, event.revision, initial_end=initial_end)
                    elif event.type == watching.ERROR:
                        yield "ERROR", event.obj
                    else:
                        yield event.type, registry.to_version(info, event.obj)
        finally:
            stream.close()


def _bookmark(info: kinds.ResourceInfo, revision: int, *, initial_end: bool = False) -> Any:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
