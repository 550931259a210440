"""LIST and WATCH of a collection (all namespaces when the request names none)."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, listing, query, watch
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    opts = query.list_options(req.query)
    if req.watch or opts.watch:
        return await watch.serve(req.http, req.registry, req.info, req.namespace, opts)
    body = await listing.list_objects(req.registry, req.info, req.namespace, opts)
    return await codec.list_response(req.http, body)
