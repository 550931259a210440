"""DELETE of one object, and of a whole (selected) collection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import codec, deletion, listing, query
from kybern.apiserver.handlers import context


async def _options(req: context.Request) -> deletion.DeleteOptions:
    raw = await codec.read_body(req.http)
    body: Any = None
    if raw.strip():
        body = codec.decode(raw, codec.media_type(req.http))
    return deletion.parse_options(req.query, body)


async def handle(req: context.Request) -> web.StreamResponse:
    options = await _options(req)
    result = await deletion.delete(req.registry, req.info, req.namespace, req.name, options)
    return codec.response(deletion.response(req.info, result))


async def handle_collection(req: context.Request) -> web.StreamResponse:
    options = await _options(req)
    opts = query.list_options(req.query)
    listed = await listing.list_objects(req.registry, req.info, req.namespace, opts)
    deleted = []
    for item in listed["items"]:
        meta = item["metadata"]
        try:
            result = await deletion.delete(
                req.registry, req.info, meta.get("namespace", ""), meta["name"], options
            )
        except Exception as exc:  # an object that vanished meanwhile is simply gone
            if getattr(exc, "code", None) == 404:
                continue
            raise
        deleted.append(result.obj)
    listed["items"] = deleted
    return codec.response(listed)
