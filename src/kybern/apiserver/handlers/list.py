"""LIST and WATCH of a collection (all namespaces when the request names none)."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, listing, query, tables, watch
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    opts = query.list_options(req.query)
    watching = req.watch or opts.watch
    output = tables.negotiate(req.http, is_list=True, watch=watching)
    if watching:
        return await watch.serve(req.http, req.registry, req.info, req.namespace, opts, output)
    body = await listing.list_objects(req.registry, req.info, req.namespace, opts)
    if output is not tables.PLAIN:
        return tables.list_response(req.info, body, output)
    return await codec.list_response(req.http, body)
