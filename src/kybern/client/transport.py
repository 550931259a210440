"""How a client reaches an API server: the ``Transport`` protocol and what it answers.

Two transports implement it: ``rest.RESTTransport`` (HTTPS with aiohttp, built from a
kubeconfig) and ``inprocess.InProcessTransport`` (calls into an API server running in the same
process, through its authentication identity, admission, validation and defaulting path, but
without HTTP and without a JSON round trip). ``resources.Client`` builds Kubernetes paths on
top of either one and never knows which it has.

Objects a transport returns may be shared with the server's watch cache (``Response.shared``):
such objects are immutable by convention and must be copied before anyone changes them.
``resources.Client`` does that copy unless its caller asks for shared objects (informers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

Query = Mapping[str, str | Sequence[str]]
_UNSET: Any = object()


class Response:
    """One answer: the status code, headers, and the body as bytes and/or a decoded object.

    An HTTP transport gives ``raw`` bytes, decoded on demand by ``json()``; the in-process
    transport gives the object itself and encodes only if someone asks for ``body_bytes``.
    """

    __slots__ = ("_obj", "_raw", "headers", "shared", "status")

    def __init__(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        obj: Any = _UNSET,
        shared: bool = False,
    ) -> None:
        self.status = status
        self.headers: Mapping[str, str] = headers or {}
        self._raw = raw
        self._obj = obj
        # True: json() may be the server's cached object; copy it before changing it.
        self.shared = shared

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        if self._obj is _UNSET:
            raw = self._raw or b""
            self._obj = orjson.loads(raw) if raw.strip() else None
        return self._obj

    @property
    def body_bytes(self) -> bytes:
        if self._raw is None:
            self._raw = b"" if self._obj is _UNSET or self._obj is None else orjson.dumps(self._obj)
        return self._raw


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One decoded watch event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (object: Status)."""

    type: str
    object: dict[str, Any]


class Transport(Protocol):
    """What ``resources.Client`` needs from a connection to an API server."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request. ``body`` is a JSON-compatible object (or bytes, sent as is); a
        failure status is returned, not raised (``resources.Client`` raises)."""
        ...

    def stream(self, method: str, path: str, *, query: Query | None = None) -> AsyncIterator[bytes]:
        """The response body line by line (``pods/log?follow``; raw watch streams)."""
        ...

    def watch(self, path: str, *, query: Query | None = None) -> AsyncIterator[WatchEvent]:
        """A watch of a collection path (``watch=true`` is implied), decoded event by event.
        Objects may be shared with the server's cache: treat them as immutable. A watch the
        server refuses, at once or later (410 Gone), yields an ERROR event with the Status."""
        ...

    async def close(self) -> None: ...


# -- the in-process seam ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """Who an in-process component acts as (Kubernetes' user.Info)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()


class LocalAPI(Protocol):
    """An API server in the same process, as ``inprocess.InProcessTransport`` calls it.

    Implemented by ``kybern.apiserver.local`` (the client must not import the API server; the
    assembly layer wires the two). Bodies are decoded objects that the server may change (the
    transport hands it a copy); answers may be shared with the server's cache.
    """

    async def handle(
        self,
        method: str,
        path: str,
        query: Query,
        body: Any,
        content_type: str,
        user: User,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """-> (status code, answer object: the object, a list, or a Status). ``headers``:
        what HTTP would carry besides the body (User-Agent names the field manager)."""
        ...

    def watch(self, path: str, query: Query, user: User) -> AsyncIterator[tuple[str, Any]]:
        """-> (event type, object) pairs. A watch refused before it starts (bad selector,
        unknown resource) and one whose resourceVersion is too old (410) both end with an
        ``("ERROR", Status)`` pair, as the HTTP stream would carry it."""
        ...
