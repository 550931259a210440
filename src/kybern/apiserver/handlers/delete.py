"""DELETE of one object, and of a whole (selected) collection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import deletion, errors, listing, query
from kybern.apiserver.handlers import context


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    options = deletion.parse_options(call.query, body)
    result = await deletion.delete(call.registry, call.info, call.namespace, call.name, options)
    return 200, deletion.response(call.info, result)


async def collection_operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    options = deletion.parse_options(call.query, body)
    opts = query.list_options(call.query)
    listed = await listing.list_objects(call.registry, call.info, call.namespace, opts)
    deleted = []
    for item in listed["items"]:
        meta = item["metadata"]
        try:
            result = await deletion.delete(
                call.registry, call.info, meta.get("namespace", ""), meta["name"], options
            )
        except errors.StatusError as exc:
            if exc.code == 404:  # vanished meanwhile: simply gone
                continue
            raise
        deleted.append(result.obj)
    listed["items"] = deleted
    return 200, listed


async def handle(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, operation, await context.read_body(req))


async def handle_collection(req: context.Request) -> web.StreamResponse:
    return await context.respond(req, collection_operation, await context.read_body(req))
