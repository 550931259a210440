"""Request and response bodies: JSON (orjson) and YAML in, JSON out.

Every decoding failure becomes a 400 with a message that says what was wrong; an unsupported
Content-Type is a 415. Protobuf request bodies (kubectl's create generators) are decoded by
kybern.api.protobuf.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from kybern.api import protobuf
from kybern.apiserver import errors, fieldvalidation

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PROTOBUF = protobuf.MEDIA_TYPE

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", JSON).split(";")[0].strip().lower() or JSON


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large(MAX_BODY)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.too_large(MAX_BODY) from None


def decode(raw: bytes, content_type: str) -> Any:
    if content_type == PROTOBUF:
        return decode_protobuf(raw)
    if content_type in (JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
        return decode_json(raw)
    if content_type in (YAML, APPLY_PATCH, "application/x-yaml", "text/yaml"):
        return decode_yaml(raw)
    raise errors.unsupported_media_type(content_type)


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise errors.bad_request("the request body is empty: send a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON request body: {exc}") from None
    fieldvalidation.note_json(raw, value)  # duplicate keys are found from the raw text
    return value


def decode_yaml(raw: bytes) -> Any:
    try:
        value = yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML request body: {exc}") from None
    fieldvalidation.note_yaml(raw)
    return value


async def read_object(request: web.Request) -> dict[str, Any]:
    """A request body that must be one Kubernetes object."""
    content_type = media_type(request)
    if content_type not in (JSON, YAML, "application/x-yaml", "text/yaml", PROTOBUF):
        raise errors.unsupported_media_type(content_type)
    body = decode(await read_body(request), content_type)
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the request body must be a JSON object, not {type(body).__name__}"
        )
    return body


def response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=JSON)


STREAM_ITEMS = 500  # lists longer than this are written in chunks of this many items


async def list_response(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A List object; a long one is streamed chunk by chunk instead of built as one string."""
    items = body["items"]
    if len(items) <= STREAM_ITEMS:
        return response(body)
    stream = web.StreamResponse(headers={"Content-Type": JSON})
    stream.enable_chunked_encoding()
    await stream.prepare(request)
    head = orjson.dumps({k: v for k, v in body.items() if k != "items"})
    await stream.write(head[:-1] + b',"items":[')
    for start in range(0, len(items), STREAM_ITEMS):
        chunk = orjson.dumps(items[start : start + STREAM_ITEMS])[1:-1]
        await stream.write(chunk if start == 0 else b"," + chunk)
    await stream.write(b"]}")
    await stream.write_eof()
    return stream


def raw_json(body: bytes, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def accepted_media_types(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an Accept header, most preferred first (by ``q``, then the more
    specific range, then the client's order, as Kubernetes' goautoneg does): each a lowercased
    ``type/subtype`` and its parameters (``as``, ``v``, ``g``, ...) without ``q``. Ranges with
    ``q=0`` are dropped."""
    ranges = []
    for position, clause in enumerate(accept.split(",")):
        media, *raw_params = (part.strip() for part in clause.split(";"))
        if not media:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            weight = float(params.pop("q", "1"))
        except ValueError:
            weight = 1.0
        if weight <= 0:
            continue
        kind, _, sub = media.lower().partition("/")
        rank = (-weight, kind == "*", sub in ("*", ""), position)
        ranges.append((rank, f"{kind}/{sub or '*'}", params))
    ranges.sort(key=lambda item: item[0])
    return [(media, params) for _, media, params in ranges]


def decode_protobuf(raw: bytes) -> dict[str, Any]:
    """A ``k8s\\x00`` protobuf body (kubectl's create generators, access reviews) as the dict
    the JSON path would give. Unknown field numbers are dropped, as Kubernetes' own protobuf
    decoding does (field validation applies to JSON and YAML only)."""
    try:
        return protobuf.decode(raw).obj
    except protobuf.DecodeError as exc:
        raise errors.bad_request(f"error decoding protobuf request body: {exc}") from None
