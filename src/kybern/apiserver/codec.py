"""Request and response bodies: JSON (orjson) and YAML in, JSON out.

Every decoding failure becomes a 400 with a message that says what was wrong; an unsupported
Content-Type is a 415. Protobuf request bodies arrive with the kubectl issue.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from kybern.apiserver import errors

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

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
    if content_type in (JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
        return decode_json(raw)
    if content_type in (YAML, APPLY_PATCH, "application/x-yaml", "text/yaml"):
        return decode_yaml(raw)
    raise errors.unsupported_media_type(content_type)


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise errors.bad_request("the request body is empty: send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON request body: {exc}") from None


def decode_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML request body: {exc}") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """A request body that must be one Kubernetes object."""
    content_type = media_type(request)
    if content_type not in (JSON, YAML, "application/x-yaml", "text/yaml"):
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
