"""GET of one object (as JSON, or as a Table / PartialObjectMetadata when negotiated)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybern.apiserver import registry, tables
from kybern.apiserver.handlers import context


async def operation(call: context.Call, body: Any, content_type: str) -> context.Answer:
    obj = await call.registry.get(call.info, call.namespace, call.name)
    return 200, registry.to_version(call.info, obj)


async def handle(req: context.Request) -> web.StreamResponse:
    output = tables.negotiate(req.http)  # 406 comes before 404, as in Kubernetes
    _, obj = await operation(context.call_of(req), None, "")
    return tables.object_response(req.info, obj, output)
