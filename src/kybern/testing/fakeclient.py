"""A fake API for controller tests: client-go's fake clientset + object tracker, in Python.

``FakeCluster`` holds objects in memory and serves them through a ``FakeTransport``, so a test
uses a real ``kybern.client.Client`` (the controller cannot tell). Every request is recorded
as an ``Action`` (verb, resource, namespace, name, subresource, body) for assertions.
``informers`` is a ``SharedInformerFactory`` whose informers are never started: ``preload``
puts objects into their stores directly, which is the "cache" a reconcile reads.

The tracker is deliberately simple: creates fill name (from generateName), uid,
resourceVersion and creationTimestamp; updates check resourceVersion when given; deletes of
objects with finalizers only set deletionTimestamp; patches are JSON merge patches.
Reactors (``on(verb, resource, fn)``) let a test make a verb fail.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kybern import client as kclient
from kybern.api import kinds, patch
from kybern.client import transport

Obj = dict[str, Any]
Reactor = Callable[["Action"], "transport.Response | None"]
TIMESTAMP = "2026-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Action:
    verb: str  # get, list, create, update, patch, delete, deletecollection
    resource: str  # plural
    namespace: str
    name: str
    subresource: str = ""
    body: Any = None

    def matches(self, verb: str, resource: str, *, subresource: str = "") -> bool:
        return self.verb == verb and self.resource == resource and self.subresource == subresource


def status_response(code: int, reason: str, message: str) -> transport.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return transport.Response(code, obj=body)


def _parse(path: str) -> tuple[kinds.ResourceInfo, str, str, str]:
    """-> (resource, namespace, name, subresource) of an /api or /apis path."""
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    info = kinds.lookup(group, version, rest[0])
    if info is None:
        raise KeyError(path)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return info, namespace, name, sub


class FakeCluster:
    """In-memory objects, the recorded actions, a client over them and unstarted informers."""

    def __init__(self, clock: kclient.Clock | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (storage resource, ns, name)
        self.actions: list[Action] = []
        self.reactors: list[tuple[str, str, Reactor]] = []
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)
        self.transport = FakeTransport(self)
        self.client = kclient.Client(self.transport)
        self.informers = kclient.SharedInformerFactory(
            self.client, clock=clock or kclient.FakeClock()
        )

    # -- setup -------------------------------------------------------------------------

    def add(self, *objs: Obj, cache: bool = True) -> None:
        """Store objects as the server would have them (and, by default, in the cache)."""
        for obj in objs:
            stored = self._fill(copy.deepcopy(obj))
            info = kclient.resource_info(obj["apiVersion"], obj["kind"])
            meta = stored["metadata"]
            self.objects[(info.storage_resource, meta.get("namespace", ""), meta["name"])] = stored
            if cache:
                self.preload(stored)

    def preload(self, *objs: Obj) -> None:
        """Put objects into the informer cache only (what a reconcile reads)."""
        for obj in objs:
            informer = self.informers.informer_for(obj["apiVersion"], obj["kind"])
            informer.store.put(obj)

    def on(self, verb: str, resource: str, reactor: Reactor) -> None:
        """Answer ``verb`` on ``resource`` (``*`` for any) with ``reactor`` when it returns
        a response (a failure, typically)."""
        self.reactors.append((verb, resource, reactor))

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        info = kclient.resource_info(api_version, kind)
        return self.objects.get((info.storage_resource, namespace, name))

    def writes(self) -> list[Action]:
        """Actions other than get/list (what a controller changed)."""
        return [a for a in self.actions if a.verb not in ("get", "list")]

    def clear(self) -> None:
        self.actions.clear()

    # -- the tracker -------------------------------------------------------------------

    def _fill(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._uid):05d}"
        meta.setdefault("uid", f"uid-{meta.get('name')}-{next(self._uid)}")
        meta.setdefault("creationTimestamp", TIMESTAMP)
        meta["resourceVersion"] = str(next(self._rv))
        return obj

    def handle(
        self, method: str, path: str, query: Mapping[str, Any], body: Any, content_type: str
    ) -> transport.Response:
        info, namespace, name, sub = _parse(path)
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }[method]
        if verb == "create" and isinstance(body, dict):
            namespace = namespace or (body.get("metadata") or {}).get("namespace") or ""
        action = Action(verb, info.plural, namespace, name, sub, copy.deepcopy(body))
        self.actions.append(action)
        for r_verb, r_resource, reactor in self.reactors:
            if r_verb in (verb, "*") and r_resource in (info.plural, "*"):
                answer = reactor(action)
                if answer is not None:
                    return answer
        handler = getattr(self, f"_{verb}")
        response: transport.Response = handler(info, namespace, name, sub, body, content_type)
        return response

    def _key(self, info: kinds.ResourceInfo, namespace: str, name: str) -> tuple[str, str, str]:
        return (info.storage_resource, namespace if info.namespaced else "", name)

    def _missing(self, info: kinds.ResourceInfo, name: str) -> transport.Response:
        return status_response(404, "NotFound", f'{info.plural} "{name}" not found')

    def _get(self, info: kinds.ResourceInfo, ns: str, name: str, *_: Any) -> transport.Response:
        obj = self.objects.get(self._key(info, ns, name))
        if obj is None:
            return self._missing(info, name)
        return transport.Response(200, obj=copy.deepcopy(obj))

    def _list(self, info: kinds.ResourceInfo, ns: str, *_: Any) -> transport.Response:
        items = [
            copy.deepcopy(o)
            for (res, o_ns, _n), o in self.objects.items()
            if res == info.storage_resource and (not ns or o_ns == ns)
        ]
        body = {"kind": info.list_kind, "metadata": {"resourceVersion": "1"}, "items": items}
        return transport.Response(200, obj=body)

    def _create(
        self, info: kinds.ResourceInfo, ns: str, name: str, sub: str, body: Any, _ct: str
    ) -> transport.Response:
        if sub:  # binding, eviction ...: accepted, nothing stored
            return transport.Response(201, obj=copy.deepcopy(body))
        obj = self._fill(copy.deepcopy(body))
        if info.namespaced:
            obj["metadata"]["namespace"] = ns
        key = self._key(info, ns, obj["metadata"]["name"])
        if key in self.objects:
            return status_response(409, "AlreadyExists", f'{info.plural} "{key[2]}" already exists')
        self.objects[key] = obj
        return transport.Response(201, obj=copy.deepcopy(obj))

    def _update(
        self, info: kinds.ResourceInfo, ns: str, name: str, sub: str, body: Any, _ct: str
    ) -> transport.Response:
        key = self._key(info, ns, name)
        current = self.objects.get(key)
        if current is None:
            return self._missing(info, name)
        given = (body.get("metadata") or {}).get("resourceVersion")
        if given and given != current["metadata"]["resourceVersion"]:
            return status_response(
                409, "Conflict", f'Operation cannot be fulfilled on {info.plural} "{name}"'
            )
        return self._store(info, key, copy.deepcopy(body))

    def _patch(
        self, info: kinds.ResourceInfo, ns: str, name: str, sub: str, body: Any, ct: str
    ) -> transport.Response:
        key = self._key(info, ns, name)
        current = self.objects.get(key)
        if current is None:
            return self._missing(info, name)
        return self._store(info, key, patch.apply(ct, copy.deepcopy(current), body))

    def _store(
        self, info: kinds.ResourceInfo, key: tuple[str, str, str], obj: Obj
    ) -> transport.Response:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._rv))
        spec_finalizers = (
            (obj.get("spec") or {}).get("finalizers") if info.kind == "Namespace" else None
        )
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not spec_finalizers:
            del self.objects[key]
        else:
            self.objects[key] = obj
        return transport.Response(200, obj=copy.deepcopy(obj))

    def _delete(
        self, info: kinds.ResourceInfo, ns: str, name: str, sub: str, body: Any, _ct: str
    ) -> transport.Response:
        key = self._key(info, ns, name)
        obj = self.objects.get(key)
        if obj is None:
            return self._missing(info, name)
        if obj["metadata"].get("finalizers"):
            obj = copy.deepcopy(obj)
            obj["metadata"].setdefault("deletionTimestamp", TIMESTAMP)
            return self._store(info, key, obj)
        del self.objects[key]
        return transport.Response(200, obj=copy.deepcopy(obj))

    def _deletecollection(self, info: kinds.ResourceInfo, ns: str, *_: Any) -> transport.Response:
        for key in [k for k in self.objects if k[0] == info.storage_resource and k[1] == ns]:
            self._delete(info, ns, key[2], "", None, "")
        return transport.Response(200, obj={"kind": info.list_kind, "items": []})


class FakeTransport:
    """``kybern.client.Transport`` over a ``FakeCluster`` (no watches: informers are fed by
    ``preload``)."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: transport.Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> transport.Response:
        return self.cluster.handle(method, path, query or {}, body, content_type or transport.JSON)

    def stream(
        self, method: str, path: str, *, query: transport.Query | None = None
    ) -> AsyncIterator[bytes]:
        raise NotImplementedError("the fake API does not stream")

    def watch(
        self, path: str, *, query: transport.Query | None = None
    ) -> AsyncIterator[transport.WatchEvent]:
        raise NotImplementedError("the fake API does not watch: preload the informers")

    async def close(self) -> None:
        return None
