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

This module mirrors the small parsing glue of ``handlers/`` (which read aiohttp requests); the
semantics (registry, listing, deletion, watch cache) are the shared functions themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, cast
from unittest import mock

import orjson
from aiohttp import streams, test_utils, web
from yarl import URL

from kybern.api import errors as api_errors
from kybern.api import kinds, managedfields
from kybern.apiserver import (
    authn,
    codec,
    deletion,
    errors,
    fieldvalidation,
    listing,
    query,
    registry,
    routing,
    watchcache,
)
from kybern.apiserver import watch as watching  # `watch` is LocalAPI's method name
from kybern.apiserver.handlers import binding, context, scale
from kybern.apiserver.handlers import patch as patch_handler
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
        method = method.upper()
        try:
            user_info = authenticate(user)
            req = parse_target(self.registry, path)
            q = flat_query(query)
            if _needs_handler(req, content_type, q):
                return await self._via_handler(
                    method, req, query, body, content_type, user_info, headers or {}
                )
            manager = managedfields.manager_name(
                q.get("fieldManager"), (headers or {}).get("User-Agent")
            )
            return await self._dispatch(method, req, q, body, content_type, manager)
        except Exception as exc:
            status = status_of(exc)
            return status.code, status.status()

    async def _dispatch(
        self,
        method: str,
        req: context.Request,
        q: dict[str, str],
        body: Any,
        ctype: str,
        manager: str,
    ) -> Answer:
        if req.subresource == "scale":
            return await self._scale(method, req, q, body, ctype)
        if req.subresource == "binding":
            return await self._bind(method, req, q, body)
        if req.subresource in ("status", "finalize"):
            if method not in ("GET", "PUT", "PATCH"):
                raise errors.method_not_allowed()
            return await self._object_verb(method, req, q, body, ctype, manager)
        verbs = _OBJECT_VERBS if req.name else _COLLECTION_VERBS
        verb = verbs.get(method, "")
        if req.watch or (not req.name and method == "GET" and query.parse_bool(q, "watch")):
            raise errors.bad_request("watch through LocalAPI.watch, not handle")
        if not verb or verb not in req.info.verbs:
            raise errors.method_not_allowed()
        if req.info.namespaced and not req.namespace and (req.name or method != "GET"):
            raise errors.path_not_found("")
        if req.name:
            return await self._object_verb(method, req, q, body, ctype, manager)
        return await self._collection_verb(method, req, q, body, manager)

    async def _via_handler(
        self,
        method: str,
        req: context.Request,
        query_: Query,
        body: Any,
        ctype: str,
        user: authn.UserInfo,
        headers: Mapping[str, str],
    ) -> Answer:
        """The rare requests (server-side apply, access reviews, fieldValidation, subresources
        not mirrored here) run the HTTP handler itself on a request built in memory: identical semantics
        by construction, at the price of one JSON round trip."""
        raw = b"" if body is None else orjson.dumps(body)
        reader = streams.StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
        reader.feed_data(raw)
        reader.feed_eof()
        url = URL(req.http.path).with_query([(k, v) for k, v in _pairs(query_)])
        request = test_utils.make_mocked_request(
            method,
            str(url),
            headers={**headers, "Content-Type": ctype, "Content-Length": str(len(raw))},
            payload=reader,
            client_max_size=codec.MAX_BODY,
        )
        request[authn.USER_KEY] = user
        http_req = context.Request(
            request, self.registry, req.info, req.namespace, req.name, req.subresource, req.watch
        )

        async def run(_: web.Request) -> web.StreamResponse:
            return await routing.pick(http_req)(http_req)

        # Installs the per-request field-validation state, as the HTTP middleware chain does
        # (warnings, which travel as response headers, are not returned in process).
        response = await fieldvalidation.middleware(request, run)
        payload = response.body if isinstance(response, web.Response) else None
        if not isinstance(payload, bytes | bytearray) or not payload:
            return response.status, None
        try:
            return response.status, orjson.loads(payload)
        except orjson.JSONDecodeError:
            return response.status, bytes(payload).decode(errors="replace")

    async def _object_verb(
        self,
        method: str,
        req: context.Request,
        q: dict[str, str],
        body: Any,
        ctype: str,
        manager: str,
    ) -> Answer:
        reg, info = self.registry, req.info
        if method == "GET":
            return 200, registry.to_version(info, await reg.get(info, req.namespace, req.name))
        if method == "PUT":
            obj = _object_body(info, body)
            updated, created = await reg.update(
                info,
                req.namespace,
                req.name,
                obj,
                dry_run=query.dry_run(q),
                subresource=req.subresource,
                field_manager=manager,
            )
            return (201 if created else 200), registry.to_version(info, updated)
        if method == "PATCH":
            fn = patch_handler.patch_function(ctype, body)
            patched = await reg.patch(
                info,
                req.namespace,
                req.name,
                fn,
                dry_run=query.dry_run(q),
                subresource=req.subresource,
                field_manager=manager,
            )
            return 200, registry.to_version(info, patched)
        options = deletion.parse_options(q, body)
        result = await deletion.delete(reg, info, req.namespace, req.name, options)
        return 200, deletion.response(info, result)

    async def _collection_verb(
        self, method: str, req: context.Request, q: dict[str, str], body: Any, manager: str
    ) -> Answer:
        reg, info = self.registry, req.info
        if method == "GET":
            return 200, await listing.list_objects(reg, info, req.namespace, query.list_options(q))
        if method == "POST":
            obj = _object_body(info, body)
            created = await reg.create(
                info, req.namespace, obj, dry_run=query.dry_run(q), field_manager=manager
            )
            return 201, registry.to_version(info, created)
        options = deletion.parse_options(q, body)
        listed = await listing.list_objects(reg, info, req.namespace, query.list_options(q))
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                result = await deletion.delete(
                    reg, info, meta.get("namespace", ""), meta["name"], options
                )
            except errors.StatusError as exc:
                if exc.code == 404:  # vanished meanwhile: simply gone
                    continue
                raise
            deleted.append(result.obj)
        listed["items"] = deleted
        return 200, listed

    async def _scale(
        self, method: str, req: context.Request, q: dict[str, str], body: Any, ctype: str
    ) -> Answer:
        reg, info = self.registry, req.info
        if method == "GET":
            obj = registry.to_version(info, await reg.get(info, req.namespace, req.name))
            return 200, scale.to_scale(info, obj)
        if method == "PUT":
            new_scale = _dict_body(body)

            def change(obj: dict[str, Any]) -> dict[str, Any]:
                return scale._with_replicas(obj, new_scale)

        elif method == "PATCH":
            scale_patch = patch_handler.patch_function(ctype, body)

            def change(obj: dict[str, Any]) -> dict[str, Any]:
                return scale._with_replicas(obj, scale_patch(scale.to_scale(info, obj)))

        else:
            raise errors.method_not_allowed()
        updated = await reg.patch(info, req.namespace, req.name, change, dry_run=query.dry_run(q))
        return 200, scale.to_scale(info, registry.to_version(info, updated))

    async def _bind(
        self, method: str, req: context.Request, q: dict[str, str], body: Any
    ) -> Answer:
        if method != "POST":
            raise errors.method_not_allowed()
        obj = _dict_body(body)
        meta = obj.get("metadata") or {}
        name = req.name or meta.get("name", "")
        target = obj.get("target") or {}
        node = target.get("name") if isinstance(target, dict) else None
        if not node or not isinstance(node, str):
            cause = {"reason": "FieldValueRequired", "message": "Required value"}
            raise errors.StatusError(
                422,
                "Invalid",
                f'Binding "{name}" is invalid: target.name: Required value',
                details={
                    "name": name,
                    "kind": "Binding",
                    "causes": [{**cause, "field": "target.name"}],
                },
            )
        if req.name and meta.get("name", req.name) != req.name:
            raise errors.bad_request("the binding's name does not match the pod's name in the URL")
        await self.registry.system_update(
            req.info,
            req.namespace,
            name,
            lambda pod: binding._bind(pod, node),
            dry_run=query.dry_run(q),
        )
        return 201, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

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


_MIRRORED_SUBRESOURCES = ("", "status", "finalize", "scale", "binding")


def _needs_handler(req: context.Request, content_type: str, q: Mapping[str, str]) -> bool:
    return (
        req.info.virtual
        or req.subresource not in _MIRRORED_SUBRESOURCES
        or content_type == codec.APPLY_PATCH
        or "fieldValidation" in q  # its checks live in the HTTP request's state
    )


def _pairs(q: Query) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in q.items():
        if isinstance(value, str):
            out.append((key, value))
        else:
            out.extend((key, str(v)) for v in value)
    return out


_COLLECTION_VERBS = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}
_OBJECT_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _dict_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the request body must be a JSON object, not {type(body).__name__}"
        )
    return body


def _object_body(info: kinds.ResourceInfo, body: Any) -> dict[str, Any]:
    obj = _dict_body(body)
    context.check_type(info, obj)
    return obj


def _bookmark(info: kinds.ResourceInfo, revision: int, *, initial_end: bool = False) -> Any:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
