"""Output negotiation for reads and the meta.k8s.io Table / PartialObjectMetadata forms.

``kubectl get`` asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,
application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json``. The first range the
server can produce wins (by ``q``, then order): a Table (meta.k8s.io v1 or v1beta1), a
PartialObjectMetadata(List), YAML (not for watches) or plain JSON (also for protobuf ranges:
kybern encodes no protobuf, and clients decode by the response's Content-Type); when none can
be produced the answer is 406 NotAcceptable. A Table's columns and cells come from
``kybern.api.printers``; every row carries the object as the ``includeObject`` parameter asks:
its metadata as a PartialObjectMetadata (``Metadata``, the default), the whole object
(``Object``, what ``kubectl get --sort-by`` sends) or nothing (``None``).

Watches in Table form send one single-row Table per event; like Kubernetes, only the first
event carries the column definitions (later ones have ``columnDefinitions: null``). Those
header-less lines are encoded once per event and shared by every watcher asking for the same
form (cache key: API version + form + includeObject), next to the plain JSON lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from kybern.api import kinds, printers
from kybern.apiserver import codec, errors, registry, watchcache

META_GROUP = "meta.k8s.io"
META_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("Metadata", "Object", "None")
JSON, YAML, TABLE, PARTIAL = "json", "yaml", "Table", "PartialObjectMetadata"
# Protobuf is answered with JSON: kybern encodes no protobuf, and client-go decodes a response
# by its Content-Type, so a protobuf-preferring client still reads it (a 406 would break it).
_PROTOBUF = "application/vnd.kubernetes.protobuf"
_ANY_JSON = ("application/json", "application/*", "*/*", _PROTOBUF)
_YamlDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True, slots=True)
class Output:
    """What a read answers with."""

    form: str = JSON
    version: str = "v1"  # meta.k8s.io version of a Table / PartialObjectMetadata
    include_object: str = "Metadata"

    @property
    def transformed(self) -> bool:
        return self.form in (TABLE, PARTIAL)

    @property
    def api_version(self) -> str:
        return f"{META_GROUP}/{self.version}"

    def content_type(self, *, is_list: bool = False) -> str:
        if self.form == YAML:
            return codec.YAML
        if not self.transformed:
            return codec.JSON
        kind = f"{self.form}List" if is_list and self.form == PARTIAL else self.form
        return f"application/json;as={kind};v={self.version};g={META_GROUP}"

    def cache_key(self, api_version: str) -> str:
        return f"{api_version};as={self.form};v={self.version};o={self.include_object}"


PLAIN = Output()


def negotiate(request: web.Request, *, is_list: bool = False, watch: bool = False) -> Output:
    """The output form for a GET (``is_list`` for collections, ``watch`` for watches)."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return PLAIN
    for media, params in codec.accepted_media_types(accept):
        found = _match(media, params, is_list=is_list, watch=watch)
        if found is not None:
            if found.form == TABLE:
                return Output(TABLE, found.version, _include_object(request))
            return found
    raise errors.not_acceptable(accept)


def _match(media: str, params: dict[str, str], *, is_list: bool, watch: bool) -> Output | None:
    wanted = params.get("as", "")
    if media == codec.YAML:
        return Output(YAML) if not wanted and not watch else None
    if media not in _ANY_JSON:
        return None
    if not wanted:
        return PLAIN
    if params.get("g") != META_GROUP or params.get("v") not in META_VERSIONS:
        return None
    version = params["v"]
    if wanted == TABLE:
        return Output(TABLE, version)
    partial = "PartialObjectMetadataList" if is_list and not watch else PARTIAL
    return Output(PARTIAL, version) if wanted == partial else None


def _include_object(request: web.Request) -> str:
    raw = request.query.get("includeObject", "")
    if raw == "":
        return "Metadata"
    if raw not in INCLUDE_OBJECT:
        raise errors.bad_request(f'unrecognized includeObject value: "{raw}"')
    return raw


# -- building Tables ----------------------------------------------------------------------


def partial(obj: dict[str, Any], output: Output) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": output.api_version,
        "metadata": obj.get("metadata") or {},
    }


def _row(
    printer: printers.Printer, obj: dict[str, Any], output: Output, now: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": printer.row(obj, now)}
    if printer.conditions is not None:
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
    if output.include_object == "Object":
        row["object"] = obj
    elif output.include_object == "None":
        row["object"] = None
    else:
        row["object"] = partial(obj, output)
    return row


def table(
    info: kinds.ResourceInfo,
    objects: list[dict[str, Any]],
    meta: dict[str, Any],
    output: Output,
    *,
    headers: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    """A Table of ``objects`` (already in the request's version) with list metadata ``meta``."""
    printer = printers.printer_for(info.group, info.kind)
    moment = time.time() if now is None else now
    return {
        "kind": "Table",
        "apiVersion": output.api_version,
        "metadata": meta,
        "columnDefinitions": printer.column_definitions() if headers else None,
        "rows": [_row(printer, obj, output, moment) for obj in objects],
    }


def _object_meta(obj: dict[str, Any]) -> dict[str, Any]:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return {"resourceVersion": version} if version else {}


def object_response(info: kinds.ResourceInfo, obj: dict[str, Any], output: Output) -> web.Response:
    """A GET of one object in the negotiated form."""
    if output.form == TABLE:
        body: Any = table(info, [obj], _object_meta(obj), output)
    elif output.form == PARTIAL:
        body = partial(obj, output)
    elif output.form == YAML:
        return _yaml_response(obj)
    else:
        return codec.response(obj)
    return codec.raw_json(orjson.dumps(body), content_type=output.content_type())


def list_response(info: kinds.ResourceInfo, body: dict[str, Any], output: Output) -> web.Response:
    """A LIST in a transformed or YAML form (plain JSON stays with codec.list_response)."""
    meta = dict(body.get("metadata") or {})
    items = body["items"]
    if output.form == TABLE:
        result: Any = table(info, items, meta, output)
    elif output.form == PARTIAL:
        result = {
            "kind": "PartialObjectMetadataList",
            "apiVersion": output.api_version,
            "metadata": meta,
            "items": [partial(obj, output) for obj in items],
        }
    else:
        return _yaml_response(body)
    content_type = output.content_type(is_list=True)
    return codec.raw_json(orjson.dumps(result), content_type=content_type)


def _yaml_response(obj: Any) -> web.Response:
    text = yaml.dump(orjson.loads(orjson.dumps(obj)), Dumper=_YamlDumper, sort_keys=False)
    return web.Response(text=text, headers={"Content-Type": codec.YAML})


# -- watches ------------------------------------------------------------------------------


class WatchEncoder:
    """Encodes one watcher's events in a transformed form; the column definitions go out
    with the first event only."""

    def __init__(self, info: kinds.ResourceInfo, output: Output) -> None:
        self.info = info
        self.output = output
        self.headers_pending = output.form == TABLE

    def event(self, event: watchcache.CachedEvent) -> bytes:
        if self.headers_pending:
            self.headers_pending = False
            return self._encode(event, headers=True)
        key = self.output.cache_key(self.info.api_version)
        line = event.encoded.get(key)
        if line is None:
            line = self._encode(event, headers=False)
            event.encoded[key] = line
        return line

    def _encode(self, event: watchcache.CachedEvent, *, headers: bool) -> bytes:
        obj = registry.to_version(self.info, event.obj)
        if self.output.form == TABLE:
            body: Any = table(self.info, [obj], _object_meta(obj), self.output, headers=headers)
        else:
            body = partial(obj, self.output)
        return orjson.dumps({"type": event.type, "object": body}) + b"\n"

    def bookmark(self, revision: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        if self.output.form == TABLE:
            body: Any = {
                "kind": "Table",
                "apiVersion": self.output.api_version,
                "metadata": {"resourceVersion": str(revision)},
                "columnDefinitions": None,
                "rows": [],
            }
        else:
            body = {"kind": PARTIAL, "apiVersion": self.output.api_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": body}) + b"\n"
