"""PUT of a whole object (or its status / its scale)."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, fieldvalidation, query, registry
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    fieldvalidation.validate_options()
    body = await context.read_object(req)
    obj, created = await req.registry.update(
        req.info,
        req.namespace,
        req.name,
        body,
        dry_run=query.dry_run(req.query),
        subresource=req.subresource,
        field_manager=context.field_manager(req),
    )
    return codec.response(registry.to_version(req.info, obj), status=201 if created else 200)
