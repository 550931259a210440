"""POST of a new object into a collection."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, fieldvalidation, query, registry
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    fieldvalidation.validate_options()
    body = await context.read_object(req)
    created = await req.registry.create(
        req.info,
        req.namespace,
        body,
        dry_run=query.dry_run(req.query),
        field_manager=context.field_manager(req),
    )
    return codec.response(registry.to_version(req.info, created), status=201)
