"""Serving the OpenAPI documents: ``/openapi/v2`` and ``/openapi/v3`` (index + one document per
group-version), as kube-apiserver serves them.

The documents come from kybern.api.openapi, built on first request and encoded once (all of
them take ~30 ms). Each carries an ETag: the upper-case hex SHA-512 of its bytes, quoted. The
v3 index points at ``/openapi/v3/<gv>?hash=<etag>``; a request whose ``hash`` matches gets
``Cache-Control: public, immutable`` (clients may keep it forever), a stale hash is redirected
(301) to the current one, and ``If-None-Match`` with the current ETag is answered 304.

``/openapi/v2`` also speaks protobuf (gnostic's ``openapi.v2.Document``, the encoding client-go
asks for with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``; kubectl
needs it for ``explain --output=plaintext-openapiv2`` and for its OpenAPI v2 fallbacks). The v3
documents are JSON only: kubectl v1.32 asks for JSON from v3, and a protobuf request gets JSON.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import orjson
import yaml
from aiohttp import web

from kybern.api import openapi as builder
from kybern.apiserver import errors

JSON = "application/json"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
ONE_YEAR = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    etag: str  # upper-case hex SHA-512 of body, unquoted


def _document(value: object) -> Document:
    body = orjson.dumps(value)
    return Document(body, hashlib.sha512(body).hexdigest().upper())


@functools.cache
def v2() -> Document:
    return _document(builder.v2_document())


@functools.cache
def v2_protobuf() -> Document:
    body = encode_document(builder.v2_document())
    return Document(body, hashlib.sha512(body).hexdigest().upper())


@functools.cache
def _v3_paths() -> dict[str, tuple[str, str]]:
    return {builder.gv_path(g, v): (g, v) for g, v in builder.group_versions()}


@functools.cache
def v3(path: str) -> Document | None:
    """The document of ``api/v1`` / ``apis/<group>/<version>``; None for an unknown path."""
    gv = _v3_paths().get(path)
    return _document(builder.v3_document(*gv)) if gv else None


@functools.cache
def v3_index() -> Document:
    paths = {}
    for path in _v3_paths():
        document = v3(path)
        assert document is not None
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={document.etag}"}
    return _document({"paths": paths})


def _serve(
    request: web.Request,
    document: Document,
    *,
    immutable: bool = False,
    content_type: str = JSON,
) -> web.Response:
    etag = f'"{document.etag}"'
    headers = {"ETag": etag, "Vary": "Accept"}
    if immutable:
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = formatdate(time.time() + ONE_YEAR, usegmt=True)
    else:
        headers["Cache-Control"] = "no-cache, private"
    if etag in _if_none_match(request):
        return web.Response(status=304, headers=headers)
    return web.Response(body=document.body, headers={**headers, "Content-Type": content_type})


def _if_none_match(request: web.Request) -> set[str]:
    raw = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in raw.split(",") if tag.strip()}


async def handle_v2(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if "proto-openapi.spec.v2" in accept and "json" not in accept:
        if v2_protobuf.cache_info().currsize == 0:  # ~0.5 s once: keep the loop free
            await asyncio.to_thread(v2_protobuf)
        return _serve(request, v2_protobuf(), content_type=V2_PROTOBUF)
    return _serve(request, v2())


async def handle_v3_index(request: web.Request) -> web.Response:
    return _serve(request, v3_index())


async def handle_v3(request: web.Request) -> web.Response:
    path = request.match_info.get("tail", "").strip("/")
    document = v3(path)
    if document is None:
        raise errors.path_not_found(request.path)
    wanted = request.query.get("hash")
    if wanted is None:
        return _serve(request, document)
    if wanted != document.etag:
        location = f"/openapi/v3/{path}?hash={document.etag}"
        return web.Response(
            status=301, headers={"Location": location, "Cache-Control": "no-cache, private"}
        )
    return _serve(request, document, immutable=True)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v2", handle_v2)
    app.router.add_get("/openapi/v3", handle_v3_index)
    app.router.add_get("/openapi/v3/", handle_v3_index)
    app.router.add_get("/openapi/v3/{tail:.+}", handle_v3)


# -- Swagger 2.0 as gnostic's openapi.v2 protobuf -------------------------------------------
# Field numbers from gnostic's openapiv2/OpenAPIv2.proto. Only what the documents use is
# encoded; vendor extensions, enums and defaults travel as YAML text (gnostic's Any.yaml), as
# kube-apiserver writes them and kube-openapi's reader expects.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _bytes(number, value.encode()) if value else b""


def _strings(number: int, values: list[str]) -> bytes:
    return b"".join(_bytes(number, v.encode()) for v in values)


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _any(value: object) -> bytes:
    """gnostic Any: the value as YAML text (field 2)."""
    return _string(2, yaml.safe_dump(value, default_flow_style=False, sort_keys=True))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _bytes(number, _string(1, name) + _bytes(2, value))


def _extensions(number: int, node: dict[str, Any]) -> bytes:
    return b"".join(
        _named(number, key, _any(value)) for key, value in node.items() if key.startswith("x-")
    )


def _schema(node: dict[str, Any]) -> bytes:
    out = [
        _string(1, node.get("$ref", "")),
        _string(2, node.get("format", "")),
        _string(4, node.get("description", "")),
    ]
    if "default" in node:
        out.append(_bytes(5, _any(node["default"])))
    out.append(_strings(19, list(node.get("required", ()))))
    out.extend(_bytes(20, _any(v)) for v in node.get("enum", ()))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_bytes(21, _bytes(1, _schema(extra))))
    elif isinstance(extra, bool):
        out.append(_bytes(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00")))
    if "type" in node:
        out.append(_bytes(22, _strings(1, [node["type"]])))
    if isinstance(node.get("items"), dict):
        out.append(_bytes(23, _bytes(1, _schema(node["items"]))))
    out.extend(_bytes(24, _schema(s)) for s in node.get("allOf", ()))
    if node.get("properties"):
        props = b"".join(_named(1, k, _schema(v)) for k, v in node["properties"].items())
        out.append(_bytes(25, props))
    out.append(_extensions(31, node))
    return b"".join(out)


def _parameter(param: dict[str, Any]) -> bytes:
    if param["in"] == "body":
        body = (
            _string(1, param.get("description", ""))
            + _string(2, param["name"])
            + _string(3, "body")
            + _bool(4, param.get("required", False))
            + _bytes(5, _schema(param["schema"]))
        )
        return _bytes(1, _bytes(1, body))  # ParametersItem.parameter.body_parameter
    path = param["in"] == "path"
    sub = (
        _bool(1, param.get("required", False))
        + _string(2, param["in"])
        + _string(3, param.get("description", ""))
        + _string(4, param["name"])
        + _string(5 if path else 6, param.get("type", ""))
        + _bool(19 if path else 20, param.get("uniqueItems", False))
    )
    # ParametersItem.parameter.non_body_parameter.{path,query}_parameter_sub_schema
    return _bytes(1, _bytes(2, _bytes(4 if path else 3, sub)))


def _operation(op: dict[str, Any]) -> bytes:
    responses = b"".join(
        _named(1, code, _bytes(1, _response(value))) for code, value in op["responses"].items()
    )
    return b"".join(
        [
            _strings(1, op.get("tags", [])),
            _string(3, op.get("description", "")),
            _string(5, op.get("operationId", "")),
            _strings(6, op.get("produces", [])),
            _strings(7, op.get("consumes", [])),
            b"".join(_bytes(8, _parameter(p)) for p in op.get("parameters", ())),
            _bytes(9, responses),
            _strings(10, op.get("schemes", [])),
            _extensions(13, op),
        ]
    )


def _response(value: dict[str, Any]) -> bytes:
    out = _string(1, value.get("description", ""))
    if "schema" in value:
        out += _bytes(2, _bytes(1, _schema(value["schema"])))  # SchemaItem.schema
    return out


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    out = [_bytes(_METHODS[m], _operation(op)) for m, op in item.items() if m in _METHODS]
    out.extend(_bytes(9, _parameter(p)) for p in item.get("parameters", ()))
    return b"".join(out)


def encode_document(doc: dict[str, Any]) -> bytes:
    """A Swagger 2.0 document (as kybern.api.openapi.v2_document builds it) as gnostic's
    ``openapi.v2.Document`` protobuf."""
    info = _string(1, doc["info"]["title"]) + _string(2, doc["info"]["version"])
    paths = b"".join(_named(2, path, _path_item(item)) for path, item in doc["paths"].items())
    definitions = b"".join(_named(1, k, _schema(v)) for k, v in doc["definitions"].items())
    security_defs = b"".join(
        _named(1, name, _bytes(2, _api_key(value)))  # SecurityDefinitionsItem.api_key_security
        for name, value in doc.get("securityDefinitions", {}).items()
    )
    security = b"".join(
        _bytes(12, b"".join(_named(1, k, _strings(1, v)) for k, v in requirement.items()))
        for requirement in doc.get("security", ())
    )
    return b"".join(
        [
            _string(1, doc["swagger"]),
            _bytes(2, info),
            _bytes(8, paths),
            _bytes(9, definitions),
            security,
            _bytes(13, security_defs),
        ]
    )


def _api_key(value: dict[str, Any]) -> bytes:
    return (
        _string(1, value.get("type", ""))
        + _string(2, value.get("name", ""))
        + _string(3, value.get("in", ""))
        + _string(4, value.get("description", ""))
    )
