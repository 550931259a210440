"""POST of a new object into a collection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import codec, fieldvalidation, registry
from kybern.apiserver.handlers import context


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    fieldvalidation.validate_options()
    obj = context.object_body(call.info, body)
    created = await call.registry.create(
        call.info, call.namespace, obj, dry_run=call.dry_run, field_manager=call.field_manager
    )
    return 201, registry.to_version(call.info, created)


async def handle(req: context.Request) -> web.StreamResponse:
    fieldvalidation.validate_options()
    return await context.respond(req, operation, await codec.read_object(req.http))
