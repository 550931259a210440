"""POST of a new object into a collection."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, query, registry
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    body = await context.read_object(req)
    created = await req.registry.create(
        req.info, req.namespace, body, dry_run=query.dry_run(req.query)
    )
    return codec.response(registry.to_version(req.info, created), status=201)
