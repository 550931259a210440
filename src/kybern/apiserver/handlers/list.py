"""LIST and WATCH of a collection (all namespaces when the request names none)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import codec, listing, query, tables, watch
from kybern.apiserver.handlers import context


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    opts = query.list_options(call.query)
    return 200, await listing.list_objects(call.registry, call.info, call.namespace, opts)


async def handle(req: context.Request) -> web.StreamResponse:
    opts = query.list_options(req.query)
    watching = req.watch or opts.watch
    output = tables.negotiate(req.http, is_list=True, watch=watching)
    if watching:
        return await watch.serve(req.http, req.registry, req.info, req.namespace, opts, output)
    _, body = await operation(context.call_of(req), None, "")
    if output is not tables.PLAIN:
        return tables.list_response(req.info, body, output)
    return await codec.list_response(req.http, body)
