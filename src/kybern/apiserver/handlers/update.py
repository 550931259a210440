"""PUT of a whole object (or its status, or a namespace's finalizers)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import codec, fieldvalidation, registry
from kybern.apiserver.handlers import context


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    fieldvalidation.validate_options()
    obj, created = await call.registry.update(
        call.info,
        call.namespace,
        call.name,
        context.object_body(call.info, body),
        dry_run=call.dry_run,
        subresource=call.subresource,
        field_manager=call.field_manager,
    )
    return (201 if created else 200), registry.to_version(call.info, obj)


async def handle(req: context.Request) -> web.StreamResponse:
    fieldvalidation.validate_options()
    return await context.respond(req, operation, await codec.read_object(req.http))
